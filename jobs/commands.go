package jobs

import "github.com/urfave/cli/v3"

// commands lists the commands in the order --help shows them.
func commands() []*cli.Command {
	return []*cli.Command{runCommand(), rerunCommand(), traceCommand(), preflightCommand(), reconcileCommand(),
		scheduleCommand(), benchCommand(), versionCommand()}
}
