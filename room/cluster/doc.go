// Package cluster is the transport of a multi-node Confab: it connects a
// node to NATS (an existing NATS cluster, or a nats-server embedded in the
// process whose routes join the other nodes' servers), keeps the table of
// live nodes, and carries room events and node-to-node requests. It knows
// nothing of what rooms mean: payloads are JSON with a kind string.
//
// # Subjects
//
// With the default prefix "confab":
//
//	confab.node.hb           heartbeat ("hb") of every node every Heartbeat, and "bye" on Close
//	confab.node.<id>.hello   the others' answers to node <id>'s hello
//	confab.node.<id>.req     requests to node <id>; replies go to the requester's inbox
//	confab.room.<token>      events of one room; token = base64url(room name), no padding
//
// Room names are encoded because they may hold '.', the NATS token
// separator, and characters subjects refuse. A node subscribes to a room
// subject only while it hosts the room (JoinRoom), so a room's events
// reach only the nodes with members in it.
//
// # Envelope
//
// Every message is one JSON object:
//
//	{"v":1,"node":"<sender id>","room":"<room name>","kind":"chat","seq":42,"data":{...}}
//
// room is set on room subjects only; seq counts the sender's messages;
// data is opaque. A heartbeat's data is
// {"id","url","started","load":{"participants","streams","cpu"}}. A reply
// has kind "reply" (data: the handler's result) or "error" (data:
// {"code","message"}).
//
// A message is dropped, and counted in confab_cluster_dropped_total by
// reason, when it does not parse or a field is malformed ("parse"), has
// another v ("version"), carries this node's own ID ("echo": NATS is told
// not to echo, so this is a second process with the same NodeID), comes
// from a node not in the live-node table ("unknown_node"; heartbeats are
// how nodes enter it), names another room than its subject or a room this
// node has left ("room_mismatch"), or was discarded by NATS because a
// handler was too slow ("slow_consumer"). A refused request is answered
// with an error so that the requester does not wait for its timeout.
//
// # Failure model
//
// Liveness is judged on this node's clock only: a node is live while its
// heartbeats arrive, and dropped (OnNodeDown) after DeadAfter without one,
// at once when it says bye, or when it reappears with a new start time
// (a restart under the same ID). A node's room state must therefore be
// re-announced by the room layer and expire with the node, so that a
// partition leaves no ghosts: whichever side of a partition a node is on,
// it stops hearing the other side and drops it after DeadAfter, and a node
// cut off from NATS altogether drops everyone. When connectivity returns,
// heartbeats (and the hello a node sends on reconnection) bring the nodes
// back (OnNodeUp).
//
// NATS core gives at-most-once delivery: nothing is queued while a node is
// disconnected (Publish fails with ErrNotConnected), and a room's events
// reach another NATS server a moment after JoinRoom. The room layer
// therefore asks the other nodes for a snapshot when it joins a room
// (RequestAll) and re-announces its state periodically; events of one
// sender on one room arrive in the order sent.
//
// The connection to NATS is retried forever with backoff (up to 2 s), and
// logged when lost and regained. Credentials are checked by NATS itself: a
// node with wrong credentials fails to Start, and embedded servers accept
// routes only from servers configured with the same user/password (or
// token).
package cluster
