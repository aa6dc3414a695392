// Package config reads the worker's configuration from the environment (and
// command-line flags that override it), exactly as CONTRACT.md lists it, and
// validates it once for every command.
//
// The environment is read here and nowhere else. A bad value is reported as one
// line naming the variable and the problem; commands exit with status 2.
package config
