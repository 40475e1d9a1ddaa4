package cli

import (
	"fmt"
	"math"

	"github.com/dustin/go-humanize"
)

// byteSize is a flag holding a number of bytes, written as a plain number
// or with a unit: 256MiB, 1.5GiB, 512KB (powers of 1024 for KiB, MiB,
// GiB; of 1000 for KB, MB, GB).
type byteSize struct{ n *int64 }

func (b byteSize) String() string {
	if b.n == nil || *b.n == 0 {
		return "0"
	}
	return humanize.IBytes(uint64(*b.n))
}

func (b byteSize) Set(s string) error {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return fmt.Errorf("%q: want a size such as 256MiB or 1GiB", s)
	}
	if n > math.MaxInt64 {
		return fmt.Errorf("%q: too large", s)
	}
	*b.n = int64(n)
	return nil
}

func (b byteSize) Type() string { return "size" }
