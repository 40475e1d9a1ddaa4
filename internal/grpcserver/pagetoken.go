package grpcserver

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"

	"github.com/routeguide/routeguide/internal/people"
)

// pageToken is where the next page of a ListPeople starts. It is opaque to
// clients: base64url of a small JSON object. Filters are fingerprinted so a
// token cannot be replayed with other filters; a token a client edits can at
// worst move its own starting point, which a new query could do anyway.
type pageToken struct {
	After   string `json:"a"`
	Filters uint64 `json:"f"`
}

var errBadToken = errors.New("page_token is malformed")

// filterPrint fingerprints q's filters.
func filterPrint(q people.Query) uint64 {
	h := sha256.New()
	for _, f := range []string{q.City, q.Hobby, q.NamePrefix} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// encodePageToken returns the token for the page after the name after.
func encodePageToken(q people.Query, after string) string {
	b, _ := json.Marshal(pageToken{After: after, Filters: filterPrint(q)}) // a struct of a string and a number always encodes
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken returns the name the page after token starts after. It
// fails with an Invalid error for a token that is malformed or was made for
// other filters than q's.
func decodePageToken(q people.Query, token string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", invalidToken(errBadToken.Error())
	}
	var t pageToken
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", invalidToken(errBadToken.Error())
	}
	if strings.ContainsRune(t.After, 0) {
		return "", invalidToken(errBadToken.Error())
	}
	if t.Filters != filterPrint(q) {
		return "", invalidToken("page_token was made for other filters")
	}
	return t.After, nil
}

func invalidToken(msg string) error {
	return &people.Error{Kind: people.Invalid, Message: msg, Violations: []people.FieldViolation{{Field: "page_token", Description: msg}}}
}
