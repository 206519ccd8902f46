// Package nilness tells whether an interface value holds nothing usable:
// nil itself, or a nil pointer, map, slice, channel or function wrapped in
// an interface (a "typed nil"), on which a method call would panic.
package nilness

import "reflect"

// IsNil reports whether v is nil or a typed nil.
func IsNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}
