package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v3"

	"cdrbill/pipeline"
)

// loadConfig reads the config file strictly: unknown keys and invalid values are input errors
// naming the file (and line where TOML knows it).
func loadConfig(cmd *cli.Command) (*pipeline.Config, error) {
	path, err := filepath.Abs(cmd.String("config"))
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &pipeline.InputError{File: path, Err: err}
	}
	var cfg pipeline.Config
	md, err := toml.Decode(string(b), &cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, pipeline.Inputf(path, pe.Position.Line, pe.Position.Col, "%s", pe.Message)
		}
		return nil, &pipeline.InputError{File: path, Err: err}
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return nil, &pipeline.InputError{File: path, Err: fmt.Errorf("unknown key %s", strings.Join(keys, ", "))}
	}
	cfg.File, cfg.Dir = path, filepath.Dir(path)
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, &pipeline.InputError{File: path, Err: err}
	}
	return &cfg, nil
}
