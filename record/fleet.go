package record

import (
	"math/rand/v2"
	"os"
)

// Fleet names the sensor in its records and gives each record identifiers
// that survive the sensor: a store fed by many sensors, restarted many
// times, joins and deduplicates on them.
type Fleet struct {
	// Sensor is the sensor's name (sensor.name); empty: the host name.
	Sensor string
	// CommunityIDSeed seeds the Community ID hash; every tool whose
	// records are joined must use the same seed (0 unless configured).
	CommunityIDSeed uint16
}

// DefaultSensor returns the host name, or "unknown" when it cannot be read.
func DefaultSensor() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}

// Stamp sets the record of a finished connection's sensor, a new uid and
// the community ID.
func (f *Fleet) Stamp(r *Record) {
	f.StampOpen(r)
	r.UID = NewUID()
}

// StampOpen sets the sensor and community ID of a still open connection's
// record, listed while it runs: its uid stays empty, since the record
// made when it finishes gets the connection's one uid.
func (f *Fleet) StampOpen(r *Record) {
	r.Sensor = f.Sensor
	if r.Sensor == "" {
		r.Sensor = DefaultSensor()
	}
	r.CommunityID = CommunityID(f.CommunityIDSeed, r.Client, r.Server)
}

// uidDigits is how many base62 digits hold 96 bits (62^17 > 2^96).
const uidDigits = 17

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewUID returns a connection uid in Zeek's style: "C" and 96 random bits
// in base62 (17 digits, zero-padded so every uid has the same length). The
// bits come from the runtime's ChaCha8 generator, seeded from the
// operating system's entropy in each process, so uids do not repeat
// across sensors or restarts (a collision among 10^12 uids has a chance
// of about 10^-5) and cost no system call.
func NewUID() string {
	hi, lo := rand.Uint32(), rand.Uint64() // 32 + 64 = 96 bits
	var b [1 + uidDigits]byte
	b[0] = 'C'
	for i := uidDigits; i > 0; i-- {
		// (hi:lo) / 62 with the remainder, in two 64-bit steps.
		h, r := uint64(hi)/62, uint64(hi)%62
		// r < 62 so (r<<32 | lo>>32) fits in 64 bits.
		mid := r<<32 | lo>>32
		m, r2 := mid/62, mid%62
		low := r2<<32 | lo&0xffffffff
		l, r3 := low/62, low%62
		hi, lo = uint32(h), m<<32|l
		b[i] = base62[r3]
	}
	return string(b[:])
}
