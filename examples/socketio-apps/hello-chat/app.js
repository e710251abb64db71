const app = require('express')();
const server = require('http').createServer(app);
const {Server} = require('palaver/socket.io'); // was: require('socket.io')
const io = new Server(server);
//基于http模块来生成服务器实例，方便HTTP和HTTPS两个版本的写法
//而且还可以使用express框架的路径写法

//当接收到请求的时候,就把html文件作为响应的文件
app.get('/',(req,res) => {
	res.sendFile(__dirname + '/index.html');
});

io.on('connection',socket => {
	console.log('有个connection进入了聊天室');

	socket.on('chat message',msg => {
		console.log(msg);
		//在chat message 事件下用io实例来触发一下chat message
		//并且把从客户端接收到的数据发送出去
		io.emit('chat message',msg);

	})

	socket.on('disconnect',()=>{
		console.log('connection离开了')
	});
});

server.listen(process.env.PORT || '3000',() => '服务器开启');

