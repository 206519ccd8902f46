package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestQuickRunReportsEveryScenario runs what `lockbench -quick` runs and
// checks that the report has every table with a row per library and N, and
// that no lock was ever shared (the figures themselves are not judged).
func TestQuickRunReportsEveryScenario(t *testing.T) {
	requireRedis(t)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := Run(ctx, QuickConfig(), &out); err != nil {
		t.Fatalf("Run: %v\nreport so far:\n%s", err, out.String())
	}
	report := out.String()
	t.Logf("report:\n%s", report)

	for _, want := range []string{"| Go | go", "| CPUs |", "| redis-server | ", "| date |", "Total run time:"} {
		if !strings.Contains(report, want) {
			t.Errorf("report header lacks %q", want)
		}
	}

	rowsPerN := map[string][]string{
		"1.": {"quorumlock", "redsync", "redislock", "floor"},
		"2.": {"quorumlock", "redsync", "redislock", "floor"},
		"3.": {"quorumlock", "redsync", labelRedislockRetry},
		"4.": {"quorumlock", "redsync", labelRedislockDefault, labelRedislockRetry},
	}
	for prefix, libs := range rowsPerN {
		rows := table(t, report, prefix)
		for _, n := range []string{"1", "3", "5"} {
			for _, lib := range libs {
				singleServer := strings.HasPrefix(lib, "redislock")
				if got := countRows(rows, n, lib); got != 1 && !(singleServer && n != "1") {
					t.Errorf("table %s: %d rows for %s N=%s, want 1", prefix, got, lib, n)
				}
				if singleServer && n != "1" && countRows(rows, n, lib) != 0 {
					t.Errorf("table %s: redislock has a row for N=%s", prefix, n)
				}
			}
		}
	}
	for _, row := range table(t, report, "3.") {
		if row["overlaps"] != "0" {
			t.Errorf("contention: %s N=%s: overlaps %q, want 0", row["library"], row["N"], row["overlaps"])
		}
	}
	for _, row := range table(t, report, "4.") {
		if row["oversold (max)"] != "0" || row["overlaps (max)"] != "0" {
			t.Errorf("flash sale: %s N=%s: oversold %q, overlaps %q, want 0", row["library"], row["N"], row["oversold (max)"], row["overlaps (max)"])
		}
	}
	checkFleetTables(t, report)
	for prefix, want := range map[string]int{"5.": 3, "6a.": 2, "6b.": 2} {
		if rows := table(t, report, prefix); len(rows) != want {
			t.Errorf("table %s has %d rows, want %d", prefix, len(rows), want)
		}
	}
}

// checkFleetTables checks the tables of the multi-process scenarios: a row
// per library and N, no overlaps, nothing oversold.
func checkFleetTables(t *testing.T, report string) {
	t.Helper()
	libs := []string{libQuorumlock, libRedsync}
	for prefix, ns := range map[string][]string{"7.": {"1", "3", "5"}, "7a.": {"1", "3", "5"}, "8.": {"3"}, "8a.": {"3"}, "9.": {"1", "3"}} {
		rows := table(t, report, prefix)
		for _, n := range ns {
			for _, lib := range libs {
				if got := countRows(rows, n, lib); got != 1 {
					t.Errorf("table %s: %d rows for %s N=%s, want 1", prefix, got, lib, n)
				}
			}
		}
	}
	for _, prefix := range []string{"7.", "8."} {
		for _, row := range table(t, report, prefix) {
			if row["overlaps"] != "0" {
				t.Errorf("table %s: %s N=%s: overlaps %q, want 0", prefix, row["library"], row["N"], row["overlaps"])
			}
		}
	}
	for _, row := range table(t, report, "9.") {
		if row["oversold (max)"] != "0" || row["overlaps (max)"] != "0" {
			t.Errorf("fleet flash sale: %s N=%s: oversold %q, overlaps %q, want 0", row["library"], row["N"], row["oversold (max)"], row["overlaps (max)"])
		}
	}
	mixed := table(t, report, "7b.")
	if len(mixed) != QuickConfig().FleetProcs {
		t.Errorf("table 7b has %d rows, want one per process", len(mixed))
	}
	if !strings.Contains(report, "overlaps 0 (must be 0)") {
		t.Errorf("table 7b does not report 0 overlaps")
	}
	if rows := table(t, report, "7c."); len(rows) != 3 {
		t.Errorf("table 7c has %d rows, want 3", len(rows))
	}
	failover := table(t, report, "10.")
	for _, n := range []string{"1", "3", "5"} {
		if got := countRows(failover, n, ""); got != 1 {
			t.Errorf("table 10: %d rows for N=%s, want 1", got, n)
		}
	}
}

func TestParseScenarios(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []Scenario
		wantErr bool
	}{
		{in: "", want: AllScenarios},
		{in: "all", want: AllScenarios},
		{in: "1,3", want: []Scenario{Uncontended, Contention}},
		{in: "stalled, Robustness,5", want: []Scenario{Stalled, Robustness}},
		{in: "7,fleet-slow,9", want: []Scenario{Fleet, FleetSlow, FleetFlashSale}},
		{in: "10,failover", want: []Scenario{Failover}},
		{in: "11", wantErr: true},
		{in: "1,fast", wantErr: true},
	} {
		got, err := ParseScenarios(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseScenarios(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && !equalScenarios(got, tc.want) {
			t.Errorf("ParseScenarios(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestPercentileNearestRank(t *testing.T) {
	samples := make([]time.Duration, 100)
	for i := range samples {
		samples[i] = time.Duration(100-i) * time.Millisecond
	}
	p50, p99 := latencies(samples)
	if p50 != 50*time.Millisecond || p99 != 99*time.Millisecond {
		t.Fatalf("p50, p99 of 1..100 ms = %v, %v; want 50ms, 99ms", p50, p99)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Fatalf("percentile of nothing = %v, want 0", got)
	}
	if got := (series{3, 1, 2, 10}).median(); got != 2.5 {
		t.Fatalf("median of 1,2,3,10 = %v, want 2.5", got)
	}
}

func equalScenarios(a, b []Scenario) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// table returns the rows of the report's table whose title starts with
// "## "+prefix, each as a map from column header to cell.
func table(t *testing.T, report, prefix string) []map[string]string {
	t.Helper()
	start := strings.Index(report, "\n## "+prefix)
	if start < 0 {
		t.Fatalf("report has no table %q", prefix)
	}
	var header []string
	var rows []map[string]string
	for _, line := range strings.Split(report[start+1:], "\n")[1:] {
		if strings.HasPrefix(line, "## ") {
			break
		}
		if !strings.HasPrefix(line, "|") {
			if header != nil {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case header == nil:
			header = cells
		case strings.HasPrefix(cells[0], "---"):
		default:
			row := map[string]string{}
			for i, h := range header {
				if i < len(cells) {
					row[h] = cells[i]
				}
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// countRows counts the rows for library lib on n servers.
func countRows(rows []map[string]string, n, lib string) int {
	count := 0
	for _, r := range rows {
		if r["N"] == n && r["library"] == lib {
			count++
		}
	}
	return count
}
