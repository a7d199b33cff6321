package bwe

// Packet is what transport-wide feedback told about one sent packet. Times
// are nanoseconds: Sent on the sender's clock, Arrival on the receiver's
// (any offset: only differences between arrivals are used).
type Packet struct {
	Seq     int64 // transport-wide sequence number, unwrapped
	Sent    int64 // departure time
	Arrival int64 // arrival time; meaningless when Lost
	Size    int   // bytes on the wire as the sender counted them
	Lost    bool  // reported not received
	Padding bool  // carried only padding (a probe)
	// Late marks a packet that earlier feedback reported lost and that
	// arrived after all (reordered on the path): it was not lost.
	Late bool
}
