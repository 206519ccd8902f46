package scriptkeys

import (
	"errors"
	"strings"
	"testing"
)

func evalThatPanics(v any) (err error) {
	defer RecoverCrossSlot(&err)
	if v != nil {
		panic(v)
	}
	return errors.New("no panic")
}

func TestRecoverCrossSlot(t *testing.T) {
	err := evalThatPanics("multi key command with different key slots are not allowed")
	if err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
		t.Fatalf("err = %v, want a CROSSSLOT error", err)
	}
	if err := evalThatPanics(nil); err == nil || err.Error() != "no panic" {
		t.Fatalf("err = %v without a panic", err)
	}
	defer func() {
		if r := recover(); r != "something else" {
			t.Fatalf("recovered %v, want the other panic to go on", r)
		}
	}()
	_ = evalThatPanics("something else")
	t.Fatal("the other panic was swallowed")
}
