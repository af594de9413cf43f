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
// rather than of benchmarks alone.
func addProfileFlags(root *cobra.Command) {
	var cpuPath, memPath string
	var cpuFile *os.File
	pf := root.PersistentFlags()
	pf.StringVar(&cpuPath, "cpuprofile", "", "write a CPU profile (go tool pprof) to this file")
	pf.StringVar(&memPath, "memprofile", "", "write an allocation profile to this file at exit")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if cpuPath == "" {
			return nil
		}
		f, err := os.Create(cpuPath)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		cpuFile = f
		return nil
	}
	root.PersistentPostRunE = func(*cobra.Command, []string) error {
		return stopProfiles(&cpuFile, memPath)
	}
	// PersistentPostRunE does not run when the command fails; the profile
	// of a failing run is still worth having.
	cobra.OnFinalize(func() { _ = stopProfiles(&cpuFile, memPath) })
}

func stopProfiles(cpuFile **os.File, memPath string) error {
	if *cpuFile != nil {
		pprof.StopCPUProfile()
		err := (*cpuFile).Close()
		*cpuFile = nil
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	if memPath != "" {
		f, err := os.Create(memPath)
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
	}
	return nil
}
