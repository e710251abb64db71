const WebSocket = require('palaver/ws');  //引用刚刚安装的模块 (was: require('ws'))
const wss  =  new WebSocket.Server({port:Number(process.env.PORT) || 3000}); //生成一个WebSockets实例,并指明使用的端口
//单一连接ws
wss.on('connection',ws => {
	console.log('有个人进来了');
//当前端打开页面，后端的控制台提示"有个人进来了"

//数据传输
   ws.on('message',data => {
		ws.send(data + '举头望明月，低头思故乡,')
	 })



//当前端页面关闭，后端的控制台提示"ta又走了！呜呜呜"
	ws.on('close',() => {
		console.log('ta又走了！呜呜呜')
	})
})

