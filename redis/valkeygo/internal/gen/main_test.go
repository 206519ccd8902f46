package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The adapters' directories as seen from this package's directory.
const (
	rueidisDir  = "../../../rueidis"
	valkeygoDir = "../.."
)

// TestGeneratedCodeIsCurrent fails when a rueidis adapter file was changed
// (or added, or removed) without running go generate in redis/valkeygo, or
// when a generated file was edited by hand. .ci/run runs it with -count=1,
// so that no cached pass stands for a run on the files as they are.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if _, err := os.Stat(rueidisDir); errors.Is(err, fs.ErrNotExist) {
		// A copy of this package alone has no sibling rueidis adapter.
		t.Skipf("%s not found: not in the repository", rueidisDir)
	}
	files, err := generate(rueidisDir)
	if err != nil {
		t.Fatal(err)
	}
	changed, orphaned, err := stale(files, valkeygoDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) > 0 || len(orphaned) > 0 {
		t.Errorf("redis/valkeygo is not what internal/gen makes of redis/rueidis "+
			"(stale: %v; no source any more: %v); run go generate in redis/valkeygo",
			changed, orphaned)
	}
}

// TestRewriteRenames checks each kind of name the rules change.
func TestRewriteRenames(t *testing.T) {
	cases := []struct{ in, want string }{
		{`package rueidis`, `package valkeygo`},
		{`package rueidis_test`, `package valkeygo_test`},
		{`"github.com/redis/rueidis"`, `"github.com/valkey-io/valkey-go"`},
		{`"github.com/redis/rueidis/rueidiscompat"`, `"github.com/valkey-io/valkey-go/valkeycompat"`},
		{`adapter "github.com/quorumlock/redsync/redis/rueidis"`, `adapter "github.com/quorumlock/redsync/redis/valkeygo"`},
		{`rueidiscompat.Cmdable`, `valkeycompat.Cmdable`},
		{`rueidis.IsRedisNil(err)`, `valkey.IsValkeyNil(err)`},
		{`rueidis.IsRedisErr(err)`, `valkey.IsValkeyErr(err)`},
		{`*rueidis.RedisError`, `*valkey.ValkeyError`},
		{`rueidis.Client`, `valkey.Client`},
		{`errors.New("rueidis: closed")`, `errors.New("valkeygo: closed")`},
		{`Name: "rueidis"`, `Name: "valkeygo"`},
		{`// rueidis' defaults`, `// valkey-go's defaults`},
		{`// rueidis stops waiting.`, `// valkey-go stops waiting.`},
	}
	for _, c := range cases {
		if got := string(rewrite([]byte(c.in))); got != c.want {
			t.Errorf("rewrite(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestGenerateSkipsDocAndMarksFiles: doc.go stays each package's own, every
// written file starts with the generated-code header and is named after
// valkeygo.
func TestGenerateSkipsDocAndMarksFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("doc.go", "// Package rueidis is documented here.\npackage rueidis\n")
	write("rueidis.go", "package rueidis\n\nimport \"github.com/redis/rueidis\"\n\nvar _ rueidis.Client\n")
	write("notes.txt", "rueidis")

	files, err := generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("generate wrote %d files, want 1 (valkeygo.go)", len(files))
	}
	got, ok := files["valkeygo.go"]
	if !ok {
		t.Fatalf("generate wrote %v, want valkeygo.go", files)
	}
	if !generatedRE.Match(got) || !strings.Contains(string(got), "var _ valkey.Client") {
		t.Errorf("valkeygo.go =\n%s", got)
	}

	// A generated file in the destination without a source is reported.
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "old.go"), []byte(header+"package valkeygo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, orphaned, err := stale(files, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || changed[0] != "valkeygo.go" || len(orphaned) != 1 || orphaned[0] != "old.go" {
		t.Errorf("stale = %v, %v; want [valkeygo.go], [old.go]", changed, orphaned)
	}
}
