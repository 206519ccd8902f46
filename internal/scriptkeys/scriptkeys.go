// Package scriptkeys splits the keysAndArgs of redis.Conn.Eval into a
// script's keys and its arguments, for the adapters whose client library
// wants the keys apart, as strings (go-redis, rueidis, valkey-go).
package scriptkeys

import (
	"fmt"
	"strconv"
)

// Split returns the keys and the arguments of a script taking keyCount keys
// or, when keyCount is negative, as many keys as the first element of
// keysAndArgs says (an integer of any Go type, or its decimal text, as Redis
// would accept it). Keys that are not strings are sent as the text a client
// would send for them as arguments. The error says why keysAndArgs does not
// fit keyCount; its text has no adapter prefix, callers add their own.
func Split(keyCount int, keysAndArgs []any) ([]string, []any, error) {
	keyCount, keysAndArgs, err := Count(keyCount, keysAndArgs)
	if err != nil {
		return nil, nil, err
	}
	switch keyCount {
	case 0:
		return nil, keysAndArgs, nil
	case 1:
		// The common case (every redsync script): no loop, one small slice.
		return []string{keyString(keysAndArgs[0])}, keysAndArgs[1:], nil
	}
	keys := make([]string, keyCount)
	for i := range keys {
		keys[i] = keyString(keysAndArgs[i])
	}
	return keys, keysAndArgs[keyCount:], nil
}

// Count returns the number of keys of a script taking keyCount keys, and
// its keys and arguments: keysAndArgs, without the key count that comes
// first when keyCount is negative (see Split, which gives the same
// errors). For the adapters whose client takes the keys as arguments.
func Count(keyCount int, keysAndArgs []any) (int, []any, error) {
	if keyCount < 0 {
		if len(keysAndArgs) == 0 {
			return 0, nil, fmt.Errorf("script takes its key count as the first argument, but no arguments were given")
		}
		n, ok := keyCountOf(keysAndArgs[0])
		if !ok {
			return 0, nil, fmt.Errorf("script key count (first argument) is %#v, want a non-negative integer", keysAndArgs[0])
		}
		keyCount, keysAndArgs = n, keysAndArgs[1:]
	}
	if keyCount > len(keysAndArgs) {
		return 0, nil, fmt.Errorf("script takes %d keys, but only %d keys and arguments were given", keyCount, len(keysAndArgs))
	}
	return keyCount, keysAndArgs, nil
}

// keyString returns key as a string, with the same bytes that go-redis (and
// redigo) would send for key as an argument.
func keyString(key any) string {
	switch k := key.(type) {
	case string:
		return k
	case []byte:
		return string(k)
	default:
		return fmt.Sprint(k)
	}
}

// keyCountOf returns v as a key count if it is a non-negative integer (of
// any Go integer type, or its decimal text).
func keyCountOf(v any) (int, bool) {
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int8:
		n = int64(x)
	case int16:
		n = int64(x)
	case int32:
		n = int64(x)
	case int64:
		n = x
	case uint:
		n = int64(x) // beyond MaxInt64 it wraps negative and is refused below
	case uint8:
		n = int64(x)
	case uint16:
		n = int64(x)
	case uint32:
		n = int64(x)
	case uint64:
		n = int64(x) // likewise
	case string:
		parsed, err := strconv.ParseInt(x, 10, 0)
		if err != nil {
			return 0, false
		}
		n = parsed
	default:
		return 0, false
	}
	if n < 0 || n > int64(^uint(0)>>1) {
		return 0, false
	}
	return int(n), true
}
