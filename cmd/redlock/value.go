package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// A lock value of redlock's is "<holder>@<unix seconds>.<random>": the
// holder (-value, by default host:pid) and when the value was made, so
// that status and the waiting line can say who holds the lock and since
// when, and 16 random bytes, so that every acquisition's value is its own,
// as the lock needs.

// defaultHolder is the holder of the values made without -value.
func defaultHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
}

// checkHolder tells what is wrong with -value, if anything.
func checkHolder(holder string) error {
	switch {
	case strings.HasPrefix(holder, "redsync:"):
		return usageErrorf("-value: %q begins with \"redsync:\", which the library reserves", holder)
	case strings.ContainsAny(holder, "\x00\n"):
		return usageErrorf("-value: %q has a NUL or a newline", holder)
	}
	return nil
}

// valueMaker returns the function that makes the lock values of holder.
func valueMaker(holder string) func() (string, error) {
	return func() (string, error) {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s@%d.%s", holder, time.Now().Unix(), base64.RawURLEncoding.EncodeToString(b)), nil
	}
}

// parseValue splits a value made by valueMaker; ok is false for any other
// value (one of a redsync program's, say).
func parseValue(v string) (holder string, since time.Time, ok bool) {
	at := strings.LastIndexByte(v, '@')
	if at < 0 {
		return "", time.Time{}, false
	}
	secs, random, found := strings.Cut(v[at+1:], ".")
	if !found || len(random) != 22 {
		return "", time.Time{}, false
	}
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return v[:at], time.Unix(n, 0), true
}
