package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/ussdlink/ussdlink/menus"
)

// runGraph prints the conversation's state machine, drawn from the
// transitions the engine runs: `ussdlink graph [-format mermaid|dot]`.
func runGraph(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("graph", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "mermaid", "mermaid (a state diagram, for Markdown) or dot (Graphviz)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	j := menus.TheJourney()
	switch *format {
	case "mermaid":
		_, err := io.WriteString(stdout, j.Mermaid())
		return err
	case "dot":
		_, err := io.WriteString(stdout, j.Dot())
		return err
	}
	return fmt.Errorf("graph: -format must be mermaid or dot, not %q", *format)
}
