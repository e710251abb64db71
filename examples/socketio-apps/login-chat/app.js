const app = require("express")();
const server = require("http").Server(app);
const io = require("palaver/socket.io")(server); // was: require("socket.io")

server.listen(process.env.PORT || "3000", function () {
  console.log("服务启动在3000");
});

app.get("/", function (req, res, next) {
  res.sendFile(__dirname + "/index.html");
});

let users = []; // 记录当前所有用户信息

// 连接
io.on("connect", (socket) => {
  // 登陆处理
  socket.on("login", (username) => {
    users.push({
      username: username,
    });
    socket.username = username;
    name = username;
    // 推送登陆成功
    socket.emit("loginSuccess");
    //广播事件 io.emi 加入通知
    io.emit("notify", username);
    io.emit("updateUserList", users);
  });
  // 消息处理
  socket.on("message", (people) => {
    let { username, message } = people;
    io.emit("recevied", username, message);
  });

  // 退出连接
  socket.on("loginOut", () => {
    // 退出的时候广播，退出处理
    io.emit("loginOut", socket.username);
    users = users.filter((item) => item.username !== socket.username);
    socket.username = "";
    io.emit("updateUserList", users, socket.username);
  });
});

