package destinationv1

import (
	"errors"
	"strings"
	"testing"
)

func TestContextTokenRoundTrip(t *testing.T) {
	for _, tok := range []ContextToken{
		{},
		{Namespace: "emojivoto"},
		{Namespace: "emojivoto", NodeName: "node-1.zone-a", Pod: "web-7d9c6b5f4-x2x9k"},
		{Pod: "db-0"},
	} {
		s := tok.Encode()
		got, err := ParseContextToken(s)
		if err != nil {
			t.Errorf("ParseContextToken(%q): %v", s, err)
			continue
		}
		if got != tok {
			t.Errorf("ParseContextToken(%q) = %+v, want %+v", s, got, tok)
		}
	}
}

func TestContextTokenEncoding(t *testing.T) {
	tok := ContextToken{Namespace: "emojivoto", NodeName: "node-1", Pod: "web-0"}
	if got, want := tok.Encode(), `{"ns":"emojivoto","nodeName":"node-1","pod":"web-0"}`; got != want {
		t.Errorf("Encode() = %s, want %s", got, want)
	}
}

func TestParseContextTokenAccepts(t *testing.T) {
	for s, want := range map[string]ContextToken{
		``:                   {},
		`{}`:                 {},
		` {"ns":"default"} `: {Namespace: "default"},
		`{"ns":"default","zone":"a","future":{"x":[1,{"y":null}]}}`: {Namespace: "default"},
		`{"NS":"Not-A-Label","Pod":"x","ns":"default"}`:             {Namespace: "default"},
		"{\n \"pod\" : \"web-0\"\n}\n":                              {Pod: "web-0"},
	} {
		got, err := ParseContextToken(s)
		if err != nil || got != want {
			t.Errorf("ParseContextToken(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
}

func TestParseContextTokenRejects(t *testing.T) {
	for _, s := range []string{
		`null`,
		`"ns"`,
		`[]`,
		`{`,
		`{"ns":}`,
		`{"ns":1}`,
		`{"ns":"default"}{}`,
		`{"ns":"default"} x`,
		`{}}`,
		`{}]`,
		`{"ns":"default"}}`,
		`{"ns":"a","ns":"b"}`,
		`{"ns":"a","NS":"b","ns":"c"}`,
		`{"ns":null}`,
		`{"ns":["a"]}`,
		`{"x":}`,
		`{"x":1,}`,
		`{"x" 1}`,
		`{"ns":"a" "pod":"b"}`,
		`{"ns" "a"}`,
		`{1:2}`,
		`{"ns":"a",}`,
		`{"ns":"Default"}`,
		`{"ns":"a.b"}`,
		`{"ns":"` + strings.Repeat("a", 64) + `"}`,
		`{"pod":"web_0"}`,
		`{"nodeName":"-node"}`,
		`{"ns":"default","pod":"` + strings.Repeat("a", MaxContextTokenLength) + `"}`,
		"{\"ns\":\"def\xffault\"}",
	} {
		tok, err := ParseContextToken(s)
		if err == nil {
			t.Errorf("ParseContextToken(%q) = %+v, want an error", s, tok)
			continue
		}
		if !errors.Is(err, ErrMalformedContextToken) {
			t.Errorf("ParseContextToken(%q) error %v does not wrap ErrMalformedContextToken", s, err)
		}
	}
}

// FuzzParseContextToken checks that parsing never panics, that what it
// accepts is valid, and that a parsed token survives a round trip.
func FuzzParseContextToken(f *testing.F) {
	f.Add(`{"ns":"emojivoto","nodeName":"node-1","pod":"web-0"}`)
	f.Add(`{"ns":"default","extra":[1,2,{"a":null}]}`)
	f.Add(`null`)
	f.Add(`{"NS":"x"}`)
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseContextToken(s)
		if err != nil {
			return
		}
		if err := tok.Validate(); err != nil {
			t.Fatalf("ParseContextToken(%q) returned an invalid token: %v", s, err)
		}
		again, err := ParseContextToken(tok.Encode())
		if err != nil || again != tok {
			t.Fatalf("round trip of %+v gave %+v, %v", tok, again, err)
		}
	})
}
