// Package sql holds cdrbill's DuckDB models, one per file, named by layer (staging_, rating_,
// tax_, invoice_, reconcile_). Each file starts with a header saying what it reads, what it
// writes and its grain; TABLES.md is the contract between them.
package sql

import (
	"embed"
	"fmt"
)

//go:embed *.sql
var files embed.FS

// Model returns the text of one model file, e.g. Model("rating_rated_usage.sql").
func Model(name string) (string, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("sql model %s: %w", name, err)
	}
	return string(b), nil
}

// MustModel is Model for names fixed at compile time.
func MustModel(name string) string {
	s, err := Model(name)
	if err != nil {
		panic(err)
	}
	return s
}
