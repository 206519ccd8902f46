//go:build linux

package faults

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseDurations parses a comma-separated list of positive durations.
func parseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, item := range splitList(s) {
		d, err := time.ParseDuration(item)
		if err != nil {
			return nil, fmt.Errorf("faults: bad duration %q: %w", item, err)
		}
		if d <= 0 {
			return nil, fmt.Errorf("faults: duration %q must be positive", item)
		}
		out = append(out, d)
	}
	return out, nil
}

func joinDurations(ds []time.Duration) string {
	items := make([]string, len(ds))
	for i, d := range ds {
		items[i] = d.String()
	}
	return strings.Join(items, ",")
}

// writeJSON writes v to path, indented.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// readJSON reads path into v.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("faults: reading %s: %w", path, err)
	}
	return nil
}
