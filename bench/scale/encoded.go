package main

import (
	"bufio"
	"fmt"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
)

// encodedMode prints the mean size of the people in a JSON lines file as
// GetPerson answers them: the wire encoding of each, normalized as import
// stores it.
func encodedMode(file string) {
	f, err := os.Open(file)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var n, total int64
	for sc.Scan() {
		p, err := wire.ParseJSON(sc.Bytes())
		if err != nil {
			fail(fmt.Errorf("%s line %d: %w", file, n+1, err))
		}
		total += int64(proto.Size(wire.ToProto(people.Normalize(p))))
		n++
	}
	if err := sc.Err(); err != nil {
		fail(err)
	}
	if n == 0 {
		fail(fmt.Errorf("%s holds nobody", file))
	}
	fmt.Printf("encoded_bytes_per_person %.1f\n", float64(total)/float64(n))
}
