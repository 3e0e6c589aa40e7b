package main

import (
	"fmt"
	"io"
)

func runDemo(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "cutover demo: not yet")
	return 1
}
