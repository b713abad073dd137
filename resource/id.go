package resource

import (
	"math/rand/v2"
	"sync"
	"time"
)

// crockford is the alphabet of ULIDs: sortable as ASCII, no I, L, O, U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idGen makes time-ordered, lexicographically sortable ids: 26 characters, 48
// bits of milliseconds and 80 random bits (the ULID layout). Within one
// millisecond of one generator the random part counts up, so ids made by one
// process sort in the order they were made; ids made by different processes
// are unique with overwhelming probability. The zero idGen is ready to use.
type idGen struct {
	mu   sync.Mutex
	ms   uint64
	rand [10]byte
}

// New returns an id for the moment now.
func (g *idGen) New(now time.Time) string {
	ms := uint64(now.UnixMilli())
	g.mu.Lock()
	if ms <= g.ms {
		// Same millisecond (or the clock went back): count up from the
		// last id so order holds within this generator.
		ms = g.ms
		if increment(&g.rand) {
			ms++ // the 80 bits overflowed; borrow the next millisecond
		}
	} else {
		// math/rand/v2's global source is ChaCha8 seeded by the runtime
		// from the system's randomness (WASI random_get in a guest).
		// crypto/rand would add 200 KB to every guest, and ids are
		// unique, not secret: permissions, not unguessable ids, guard
		// objects.
		hi, lo := rand.Uint64(), rand.Uint64()
		for i := range 8 {
			g.rand[i] = byte(hi >> (56 - 8*i))
		}
		g.rand[8], g.rand[9] = byte(lo>>8), byte(lo)
		g.rand[0] &= 0x7f // leave room to count up without overflow
	}
	g.ms = ms
	var b [16]byte
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	copy(b[6:], g.rand[:])
	g.mu.Unlock()
	return encodeULID(b)
}

func increment(r *[10]byte) (overflow bool) {
	for i := len(r) - 1; i >= 0; i-- {
		r[i]++
		if r[i] != 0 {
			return false
		}
	}
	return true
}

// encodeULID writes 128 bits as 26 base-32 characters, most significant
// first (the first character holds only 3 bits).
func encodeULID(b [16]byte) string {
	var out [26]byte
	// Treat b as a 130-bit number with two leading zero bits.
	var acc uint32
	bits := 2 // pretend two zero bits precede b
	j := 0
	for _, x := range b {
		acc = acc<<8 | uint32(x)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out[j] = crockford[(acc>>bits)&31]
			j++
		}
	}
	return string(out[:])
}

var defaultIDs idGen

// NewID is the default id generator: time-ordered ULID-style ids, 26
// characters, from one generator shared by the whole process.
func NewID(now time.Time) string { return defaultIDs.New(now) }
