// Preload that keeps a Node server on loopback (`node -r ./loopback.cjs server.js`): a listen()
// without a host binds 127.0.0.1 instead of every interface, and localhost resolves to IPv4
// first (tinylicious calls itself at http://localhost:PORT). Used for tinylicious in the tests
// and in the sample app.
"use strict";
const dns = require("node:dns");
const net = require("node:net");

// Tinylicious calls itself at http://localhost:PORT; resolve that to the IPv4 loopback it binds.
dns.setDefaultResultOrder("ipv4first");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
	if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
		if (typeof args[1] !== "string") args.splice(1, 0, "127.0.0.1");
	} else if (args[0] !== null && typeof args[0] === "object" && args[0].host === undefined) {
		args[0] = { ...args[0], host: "127.0.0.1" };
	}
	return listen.apply(this, args);
};

