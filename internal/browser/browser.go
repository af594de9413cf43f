// Package browser drives Debian's chromium headless from Go tests (through
// chromedp) to check tcptap's HTML report and the sensor's pages in a real
// browser: console errors and uncaught exceptions are collected, downloads
// land in a directory of the test, screenshots are kept under the test's
// artifact directory.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Browser is one headless chromium with one tab.
type Browser struct {
	Ctx context.Context
	t   *testing.T

	mu        sync.Mutex
	errs      []string
	downloads map[string]string // guid → path, once completed
	dlDir     string
}

// chromiumPath finds the browser; "" when not installed.
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Start starts chromium for t (skipping t when chromium is not installed)
// and stops it when t ends. The flags keep it off the network: this
// machine's closed network refuses its background connections, and a test
// must send nothing but to the servers it starts.
func Start(t *testing.T) *Browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("chromium is not installed (apt-get install chromium): the browser tests need it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // the tests run as root, where chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	b := &Browser{Ctx: ctx, t: t, downloads: map[string]string{}}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc() // waits for the browser process to exit
	})
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				b.errs = append(b.errs, fmt.Sprintf("console.%s %v", e.Type, e.Args))
			}
		case *runtime.EventExceptionThrown:
			b.errs = append(b.errs, (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error())
		case *cdplog.EventEntryAdded:
			if e.Entry != nil && e.Entry.Level == cdplog.EntryLevelError {
				b.errs = append(b.errs, fmt.Sprintf("log %s: %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		}
	})
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	if err := chromedp.ListenBrowser(ctx, func(ev any) {
		if e, ok := ev.(*browser.EventDownloadProgress); ok && e.State == browser.DownloadProgressStateCompleted {
			b.mu.Lock()
			b.downloads[e.GUID] = filepath.Join(b.dlDir, e.GUID)
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("listening to chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("chromium Log.enable: %v", err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("chromium Runtime.enable: %v", err)
	}
	return b
}

// Errors returns the console errors, uncaught exceptions and error log
// entries (failed loads among them) seen so far.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// Open loads url and waits for the page's body.
func (b *Browser) Open(url string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady("body")); err != nil {
		b.t.Fatalf("opening %s: %v", url, err)
	}
}

// Eval evaluates a JavaScript expression on the page into T.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// Do runs chromedp actions on the page (clicks, key presses).
func (b *Browser) Do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// WaitURL waits until the page's URL contains s (after a form's submit
// or a click on a link).
func (b *Browser) WaitURL(s string) {
	b.t.Helper()
	for range 100 {
		if u := Eval[string](b, `document.readyState === "complete" ? location.href : ""`); strings.Contains(u, s) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("the page never reached a URL with %q", s)
}

// Screenshot saves the whole page as name (a .png) under the test's
// artifact directory (kept with go test -artifacts) and logs its path.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(b.t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", path, len(png))
	return path
}

// Download clicks the link selected by the CSS selector sel and returns the
// path of the file the browser saved, once the download completed.
func (b *Browser) Download(sel string) (string, error) {
	b.t.Helper()
	dir := b.t.TempDir()
	b.mu.Lock()
	b.dlDir = dir
	b.downloads = map[string]string{}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	on := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &on,
	}); err != nil {
		return "", fmt.Errorf("allowing downloads: %w", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(sel)); err != nil {
		return "", fmt.Errorf("clicking %s: %w", sel, err)
	}
	for range 300 {
		b.mu.Lock()
		for _, p := range b.downloads {
			b.mu.Unlock()
			return p, nil
		}
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", errors.New("the download did not complete within 30 s")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return "", errors.New("the download did not complete within 30 s")
}

// CheckPcap has tshark read a downloaded pcap and checks it holds the
// want packets of the page's packet list.
func CheckPcap(t *testing.T, path string, want int) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Logf("tshark not installed: not reading %s", path)
		return
	}
	cmd := exec.Command("tshark", "-n", "-r", path, "-T", "fields", "-e", "tcp.stream")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", path, err, stderr.String())
	}
	n := len(strings.Fields(string(out)))
	if n != want {
		t.Fatalf("tshark read %d TCP packets from %s, the page lists %d", n, path, want)
	}
	t.Logf("tshark read %d TCP packets from the downloaded %s", n, filepath.Base(path))
}
