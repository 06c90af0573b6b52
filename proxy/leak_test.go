package proxy

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"strings"
	"testing"
)

// decodePrefix undoes a body's coding as far as its first part goes: a
// gzip stream cut short still shows what it held up to the cut, and a
// coding agentg cannot undo is an error, never the bytes as they are.
func TestDecodePrefix(t *testing.T) {
	text := strings.Repeat("token ghp_value-1234567890 and more text; ", 400)
	var gz, zl, fl bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(text))
	w.Close()
	z := zlib.NewWriter(&zl)
	z.Write([]byte(text))
	z.Close()
	f, _ := flate.NewWriter(&fl, flate.BestCompression)
	f.Write([]byte(text))
	f.Close()
	tests := []struct {
		name, enc string
		raw       []byte
		prefix    string // what the decoded form starts with; "" : an error
	}{
		{"gzip", "gzip", gz.Bytes(), text},
		{"x-gzip, identity", "identity, x-gzip", gz.Bytes(), text},
		{"gzip cut short", "gzip", gz.Bytes()[:gz.Len()/2], "token ghp_value-1234567890"},
		{"zlib deflate", "deflate", zl.Bytes(), text},
		{"raw deflate", "deflate", fl.Bytes(), text},
		{"br", "br", []byte("anything"), ""},
		{"not gzip", "gzip", []byte("plain text"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodePrefix(tt.raw, tt.enc)
			if tt.prefix == "" {
				if err == nil {
					t.Fatalf("no error, %d bytes", len(got))
				}
				return
			}
			if err != nil || !strings.HasPrefix(string(got), tt.prefix[:min(len(tt.prefix), len(got))]) || len(got) < len("token ghp_value-1234567890") {
				t.Fatalf("%d bytes, %v", len(got), err)
			}
			if len(got) > leakBodyMax {
				t.Fatalf("decoded %d bytes, more than %d", len(got), leakBodyMax)
			}
		})
	}
}

func TestJoinNames(t *testing.T) {
	for _, tt := range [][3]string{{"", "", ""}, {"a", "", "a"}, {"", "b", "b"}, {"a", "a", "a"}, {"a,b", "b,c", "a,b,c"}} {
		if got := joinNames(tt[0], tt[1]); got != tt[2] {
			t.Errorf("joinNames(%q, %q) = %q, want %q", tt[0], tt[1], got, tt[2])
		}
	}
}
