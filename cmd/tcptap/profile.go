package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// addProfileFlags gives every subcommand --cpuprofile and --memprofile:
// the performance work reads profiles of the real binary on real inputs
// rather than of benchmarks alone. A command that fails skips
// PersistentPostRunE; main calls finishProfiles then.
func addProfileFlags(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.String("cpuprofile", "", "write a CPU profile (go tool pprof) to this file")
	pf.String("memprofile", "", "write an allocation profile to this file at exit")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		path, _ := cmd.Flags().GetString("cpuprofile")
		if path == "" {
			return nil
		}
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		cpuProfile = f
		return nil
	}
	root.PersistentPostRunE = func(cmd *cobra.Command, _ []string) error {
		return finishProfiles(cmd)
	}
}

// cpuProfile is the file a running CPU profile goes to (one per process).
var cpuProfile *os.File

// finishProfiles stops the CPU profile and writes the allocation profile
// when their flags asked for them; calling it again does nothing more.
func finishProfiles(cmd *cobra.Command) error {
	if cpuProfile != nil {
		pprof.StopCPUProfile()
		err := cpuProfile.Close()
		cpuProfile = nil
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	path, _ := cmd.Flags().GetString("memprofile")
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	runtime.GC()
	err = pprof.Lookup("allocs").WriteTo(f, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	// Written once: a second call (after a failed command) must not
	// overwrite it.
	_ = cmd.Flags().Set("memprofile", "")
	return nil
}
