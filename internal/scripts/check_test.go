package scripts

import (
	"strconv"
	"strings"
	"testing"
)

func TestCheckOnRedis(t *testing.T) {
	s := newServer(t)
	t.Run("time", func(t *testing.T) {
		s := s.in(t)
		items, ok := s.run(Check, nil, "time").([]any)
		if !ok || len(items) != 2 {
			t.Fatalf("reply %#v, want TIME's two numbers", items)
		}
		for _, item := range items {
			text, _ := item.(string)
			if _, err := strconv.ParseUint(text, 10, 64); err != nil {
				t.Errorf("reply %#v: %v", items, err)
			}
		}
	})
	t.Run("info", func(t *testing.T) {
		s := s.in(t)
		text, _ := s.run(Check, nil, "info").(string)
		if !strings.Contains(text, "redis_version:") {
			t.Errorf("reply %.80q, want INFO", text)
		}
	})
}
