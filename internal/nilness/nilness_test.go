package nilness

import "testing"

type pool struct{}

func (*pool) Get() {}

type getter interface{ Get() }

func TestIsNil(t *testing.T) {
	var typedNil getter = (*pool)(nil)
	var nilMap map[string]int
	tests := []struct {
		desc string
		v    any
		want bool
	}{
		{"nil", nil, true},
		{"typed nil pointer", typedNil, true},
		{"nil map", nilMap, true},
		{"nil func", (func())(nil), true},
		{"pointer", &pool{}, false},
		{"struct", pool{}, false},
		{"empty map", map[string]int{}, false},
		{"int zero", 0, false},
	}
	for _, tt := range tests {
		if got := IsNil(tt.v); got != tt.want {
			t.Errorf("%s: IsNil = %v, want %v", tt.desc, got, tt.want)
		}
	}
}
