// Command cdrbill rates, taxes, exports and reconciles telecom usage for ConnectWise PSA.
package main

import (
	"os"

	"cdrbill/jobs"
)

func main() { os.Exit(jobs.Main(os.Args, os.Stdout, os.Stderr)) }
