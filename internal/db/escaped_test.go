package db_test

import (
	"bytes"
	"testing"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

// TestEscapedByteaRoundTrip: every byte value survives encode(…,'escape')
// and EscapedBytea, as do plain ASCII and an empty value.
func TestEscapedByteaRoundTrip(t *testing.T) {
	d := pgtest.New(t)
	all := make([]byte, 0, 512)
	for i := range 256 {
		all = append(all, byte(i), 'a')
	}
	for _, want := range [][]byte{all, []byte("plain ASCII\r\nmail\r\n"), {}, []byte(`\\ \000 \`)} {
		var got db.EscapedBytea
		if err := d.Get(&got, `SELECT encode($1::bytea, 'escape')`, want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("round trip of %q gave %q", want, []byte(got))
		}
	}
}

func FuzzEscapedBytea(f *testing.F) {
	f.Add([]byte(`a\\b\101\377`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var e db.EscapedBytea
		e.Scan(in) // must not panic; errors are fine for input PostgreSQL never writes
	})
}
