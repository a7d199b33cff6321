// Package sfu is Confab's media plane: it receives each participant's
// published tracks once and forwards them to every subscriber, choosing per
// subscriber the simulcast layer its request and bandwidth allow.
//
// An Engine holds what all PeerConnections share (codecs, interceptors, ICE
// settings, the optional single UDP and TCP ports). A Peer is one
// participant's PeerConnection and owns its negotiation: the server is the
// impolite peer and batches track changes into its own offers. A Receiver is
// one published track with its layers, read once and cached once; a DownTrack
// forwards a Receiver to one subscriber, rewriting sequence numbers,
// timestamps and VP8 picture ids so layer switches and pauses look like one
// stream. Per subscriber, an allocator shares the estimated bandwidth among
// its DownTracks and probes for more.
//
// The pure parts live in pion-free subpackages: packetcache (the shared
// packet cache NACKs are answered from), rewrite (sequence and timestamp
// splicing), vp8 (descriptor parsing and munging), codec (keyframe
// detection) and probe (bandwidth probing decisions).
//
// sfu knows nothing of rooms or signaling: callers wire Peers together and
// reach the client through the callbacks in PeerParams.
package sfu
