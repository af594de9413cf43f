package capture

// DecodeStats counts frames the decoder did not turn into a TCP segment, by
// cause. All fields are plain counters owned by the decoder's goroutine.
type DecodeStats struct {
	Frames           uint64 // frames offered to Decode
	TCP              uint64 // TCP segments produced
	NonIP            uint64 // link payload is not IPv4/IPv6 (ARP, LLDP, ...)
	NonTCP           uint64 // IP but not TCP (UDP, ICMP, ...)
	UnsupportedLink  uint64 // link type tcptap does not decode
	TruncatedLink    uint64 // frame shorter than its link-layer header
	TruncatedIP      uint64 // IP header cut short by the capture
	BadIPHeader      uint64 // bad version, header length or total length
	TruncatedTCP     uint64 // TCP header cut short by the capture
	BadTCPHeader     uint64 // bad data offset
	BadTCPOption     uint64 // malformed options (segment still produced)
	Fragments        uint64 // IPv4 fragments received
	FragmentsDone    uint64 // datagrams completed from fragments
	FragmentsDropped uint64 // fragments dropped: table full, timeout, overlap, bad
	IPv6Fragments    uint64 // IPv6 fragments (not reassembled; first fragment still decoded when it carries the TCP header)
}

// Decoder turns frames into Packet summaries. It is not safe for concurrent
// use; each capture goroutine owns one.
type Decoder struct {
	Stats DecodeStats
}

// NewDecoder returns a decoder with an empty fragment table.
func NewDecoder() *Decoder { return &Decoder{} }

// Decode decodes f into p. It reports whether f carried a TCP segment (or
// completed a fragmented one); otherwise the cause is counted in d.Stats.
// It never keeps a reference to f.Data and does not allocate per call.
func (d *Decoder) Decode(f *Frame, p *Packet) bool {
	panic("not implemented")
}
