// Package record writes what participants publish to standard media files:
// one WebM file (Matroska for H.264) per participant and source, the camera
// with its microphone or the screen with its audio, plus a JSON manifest per
// recording that places every file on one shared clock.
//
// It knows nothing of rooms or PeerConnections: a caller feeds RTP packets
// (pion/rtp) with their arrival time into a Recorder's tracks, sends a
// keyframe request when the Recorder asks for one, and closes the Recorder
// when the participant or the source goes away. Packets pass a reorder
// buffer and a depacketizer on the caller's goroutine (no I/O, no
// allocation in the steady state); whole frames go through a bounded queue
// to one writer goroutine per file, so the live path never waits on disk.
// The container is written by github.com/at-wat/ebml-go's Matroska muxer.
package record
