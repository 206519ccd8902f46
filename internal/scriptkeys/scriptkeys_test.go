package scriptkeys

import (
	"math"
	"reflect"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name        string
		keyCount    int
		keysAndArgs []any
		keys        []string
		args        []any
		wantErr     bool
	}{
		{"NoKeys", 0, []any{"a", 1}, nil, []any{"a", 1}, false},
		{"OneKey", 1, []any{"k", "a"}, []string{"k"}, []any{"a"}, false},
		{"TwoKeysNoArgs", 2, []any{"k1", "k2"}, []string{"k1", "k2"}, []any{}, false},
		{"NonStringKeys", 2, []any{42, []byte("b"), "a"}, []string{"42", "b"}, []any{"a"}, false},
		{"CountFirstAsInt", -1, []any{1, "k", "a"}, []string{"k"}, []any{"a"}, false},
		{"CountFirstAsUint8", -1, []any{uint8(2), "k1", "k2"}, []string{"k1", "k2"}, []any{}, false},
		{"CountFirstAsText", -1, []any{"1", "k"}, []string{"k"}, []any{}, false},
		{"CountFirstZero", -1, []any{0, "a"}, nil, []any{"a"}, false},
		{"FewerKeysThanCount", 2, []any{"k"}, nil, nil, true},
		{"CountMissing", -1, nil, nil, nil, true},
		{"CountNotAnInteger", -1, []any{"two", "k"}, nil, nil, true},
		{"CountFloat", -1, []any{1.0, "k"}, nil, nil, true},
		{"CountNegative", -1, []any{-1, "k"}, nil, nil, true},
		{"CountHugeUint64", -1, []any{uint64(math.MaxUint64), "k"}, nil, nil, true},
		{"CountBeyondArguments", -1, []any{3, "k"}, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, args, err := Split(tt.keyCount, tt.keysAndArgs)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Split = %q, %v, nil; want an error", keys, args)
				}
				return
			}
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if !reflect.DeepEqual(keys, tt.keys) || !reflect.DeepEqual(args, tt.args) {
				t.Fatalf("Split = %q, %#v; want %q, %#v", keys, args, tt.keys, tt.args)
			}
		})
	}
}
