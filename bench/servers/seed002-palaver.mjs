/*
 * @Author: elk
 * @Date: 2024-11-13 14:32:34
 * @LastEditors: elk 
 * @LastEditTime: 2024-11-13 18:29:51
 * @FilePath: /NodeJs/26-socketIO/app.js
 * @Description: socket.io
 */

import http from "node:http";
import express from "express";
import { Server } from "palaver/socket.io";

const app = express();
app.use("*", (req, res, next) => {
	res.setHeader("Access-Control-Allow-Origin", "*");
	res.setHeader("Access-Control-Allow-Headers", "*");
	res.setHeader("Access-Control-Allow-Methods", "*");
	next();
});
const server = http.createServer(app);

const io = new Server(server, {
	cors: true, // 允许跨域
});

/**
 * {
 *  1: [{name, room, id}]
 *  2: [{name, room, id}, {name, room, id}]
 * }
 */
const groupList = {};

// 开启socket连接通道
io.on("connection", (socket) => {
	console.log("开启通道，连接成功");
	// 开启并加入一个房间，接受用户名和房间号两个参数
	socket.on("join", ({ name, room }) => {
		// 加入房间
		socket.join(room);
		// 如果房间存在，新增push人进去，否则直接赋值即可
		if (groupList[room]) {
			groupList[room].push({ name, room, id: socket.id });
		} else {
			groupList[room] = [{ name, room, id: socket.id }];
		}
		// 通知放假内其他用户有新入户加入
		socket.broadcast.emit("message", { user: "管理员：", text: `${name}进入了房间` });
		// 设置左侧房间列表信息
		socket.emit("groupList", groupList);
		// 将gruopList消息上升到全局中，全部人都可以看到
		socket.broadcast.emit("groupList", groupList);
	});
	// 发送消息
	socket.on("message", ({ text, room, user }) => {
        // 监听客户端用户输入的消息，通知给当前房间的其他用户
		socket.broadcast.to(room).emit("message", {
			text,
			user,
		});
	});
	//断开链接内置事件
	socket.on("disconnect", () => {
		Object.keys(groupList).forEach((key) => {
			let leval = groupList[key].find((item) => item.id === socket.id);
			if (leval) {
				socket.broadcast.to(leval.room).emit("message", { user: "管理员", text: `${leval.name}离开了房间` });
			}
			groupList[key] = groupList[key].filter((item) => item.id !== socket.id);
		});
		socket.broadcast.emit("groupList", groupList);
	});
});

server.listen(Number(process.env.BENCH_PORT ?? 3000), "127.0.0.1", () => { // bench: was server.listen(3000, () => {
	console.log(`BENCH_LISTENING ${server.address().port}`); // bench: was console.log("listening on *:3000");
});

