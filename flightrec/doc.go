// Package flightrec is tcptap's flight recorder: the last packet records of
// each traced connection (Ring), in storage charged to one trace memory
// budget (Quota) shared by every connection table and the trace cache, and
// the records a finished connection hands over to the cache (Recording).
// The connection tracker (package reassembly) decides which connections
// are traced (Config) and fills a record per segment; the cache takes the
// rings of the connections it keeps. docs/trace.md describes the feature
// and the vendor's rules it follows.
package flightrec
