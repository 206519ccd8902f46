package bench

import (
	"fmt"
	"io"
	"strings"
)

// A section is one table of the report with the text that explains it.
type section struct {
	title  string
	about  string // how it was measured
	header []string
	rows   [][]string
	notes  []string // what to read from it, measured caveats
}

// addRow appends a row; cells are formatted with fmt.Sprint.
func (s *section) addRow(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = fmt.Sprint(c)
	}
	s.rows = append(s.rows, row)
}

// write prints s as markdown.
func (s *section) write(w io.Writer) {
	fmt.Fprintf(w, "## %s\n\n", s.title)
	if s.about != "" {
		fmt.Fprintf(w, "%s\n\n", s.about)
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(s.header, " | "))
	seps := make([]string, len(s.header))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	for _, row := range s.rows {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
	for _, n := range s.notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(s.notes) > 0 {
		fmt.Fprintln(w)
	}
}
