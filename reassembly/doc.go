// Package reassembly tracks the state of TCP connections as a passive tap
// sees them; despite its name it does no stream reassembly (it keeps no
// payload). Each worker owns a connection Table: the table (table.go)
// finds a segment's connection, handles port reuse, the idle timeout and
// the close linger in packet time; track.go keeps each endpoint's state,
// counters and the retransmission, probe and SYN runs the classifier reads;
// analysis.go gives Wireshark's per-segment analysis flags; zeek*.go
// reproduce Zeek's conn_state and history (state machine, history, timers,
// the reassembler's delivered-bytes bookkeeping); watch.go keeps the
// connections with a run in progress; trace.go and record.go are the
// flight recorder and its memory quota. The trace filter's language is
// package acl. A finished connection leaves through the table's Sink as a
// Conn view, which package classifier judges (docs/architecture.md).
package reassembly
