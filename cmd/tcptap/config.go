package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/tcptap/tcptap/config"
)

// The configuration of 'tcptap run' (docs/trace.md, Conventions): every key of package
// config is a YAML path in the file, an environment variable
// TCPTAP_SECTION_KEY and a flag --section.key. Precedence: flag >
// environment > file > default.
//
// Use:
//
//	v := bindConfig(cmd)              // when building the command
//	cfg, err := loadConfig(v)         // in RunE, after flag parsing
//	path := persistPath(v)            // where 'tcptap trace persist' writes

// configKey is the viper key (and flag, and TCPTAP_CONFIG) of the file.
const configKey = "config"

// defaultConfigFile is read when no --config is given and it exists (a
// variable for the tests).
var defaultConfigFile = config.DefaultFile

// configHelp describes the configuration sources, for the Long text of
// 'tcptap run'.
const configHelp = `Configuration: a YAML file (--config FILE or TCPTAP_CONFIG; by default
` + config.DefaultFile + ` when it exists), environment variables TCPTAP_SECTION_KEY
(TCPTAP_TRACE_CACHE_MODE=all) and the --section.key flags below
(--trace.cache_mode all), in increasing precedence over the defaults. Lists take
repeated flags or comma-separated items. Unknown keys in the file and invalid
values are refused at start with a message naming the key. The commented
example deploy/tcptap.example.yaml documents every key.`

// configShorthands are the one-letter flags of some keys.
var configShorthands = map[string]string{"capture.interfaces": "i"}

// boundFlags remembers the flag set of each viper bindConfig made, so that
// loadConfig can say which flag a bad value came from.
var (
	boundMu    sync.Mutex
	boundFlags = map[*viper.Viper]*pflag.FlagSet{}
)

// bindConfig registers --config and a --section.key flag for every
// configuration key on cmd (defaults from config.Default(), help from
// config.Keys()), and returns the viper that reads them, the environment
// (TCPTAP_ prefix, "." → "_") and, in loadConfig, the file. It also accepts
// --interface for --capture.interfaces and dashes for underscores in key
// flags (--trace.cache-mode).
func bindConfig(cmd *cobra.Command) *viper.Viper {
	v := viper.New()
	fl := cmd.Flags()
	fl.String(configKey, "", "YAML configuration file (default "+defaultConfigFile+" when it exists)")
	mustBindConfig(v, configKey, fl)
	def := config.Default()
	for _, k := range config.Keys() {
		addConfigFlag(fl, k, k.Ptr(&def))
		mustBindConfig(v, k.Name, fl)
		v.SetDefault(k.Name, k.Default())
	}
	fl.SetNormalizeFunc(normalizeConfigFlag)
	v.SetEnvPrefix(config.EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AllowEmptyEnv(true) // TCPTAP_SNMP_LISTEN= turns the agent off
	v.AutomaticEnv()
	boundMu.Lock()
	boundFlags[v] = fl
	boundMu.Unlock()
	return v
}

func mustBindConfig(v *viper.Viper, key string, fl *pflag.FlagSet) {
	if err := v.BindPFlag(key, fl.Lookup(key)); err != nil {
		panic(err)
	}
}

func addConfigFlag(fl *pflag.FlagSet, k config.Key, def any) {
	name, short, help := k.Name, configShorthands[k.Name], k.Help
	switch d := def.(type) {
	case *string:
		fl.StringP(name, short, *d, help)
	case *bool:
		fl.BoolP(name, short, *d, help)
	case *int:
		fl.IntP(name, short, *d, help)
	case *uint32:
		fl.Uint32P(name, short, *d, help)
	case *float64:
		fl.Float64P(name, short, *d, help)
	case *time.Duration:
		fl.DurationP(name, short, *d, help)
	case *[]string:
		if k.Repeat {
			fl.StringArrayP(name, short, *d, help)
		} else {
			fl.StringSliceP(name, short, *d, help)
		}
	case *[]int:
		fl.IntSliceP(name, short, *d, help)
	case *[]config.Community, *[]config.User, *[]config.View:
		fl.StringArrayP(name, short, nil, help)
	default:
		panic(fmt.Sprintf("config key %s: no flag for type %T", name, def))
	}
}

// normalizeConfigFlag maps --interface to --capture.interfaces and, in
// key flags, dashes to underscores.
func normalizeConfigFlag(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	switch name {
	case "interface", "interfaces":
		return "capture.interfaces"
	}
	if strings.Contains(name, ".") {
		name = strings.ReplaceAll(name, "-", "_")
	}
	return pflag.NormalizedName(name)
}

// loadConfig reads the configuration file (--config, TCPTAP_CONFIG, else
// the default file when it exists), decodes every key from the source that
// wins and validates the result. Every problem is reported at once, each
// naming its key and where the value came from; unknown keys in the file
// are problems too.
func loadConfig(v *viper.Viper) (config.Config, error) {
	var cfg config.Config
	var problems []error
	failed := map[string]bool{} // keys with a problem reported
	path := v.GetString(configKey)
	explicit := path != ""
	if !explicit {
		path = defaultConfigFile
	}
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			v.SetConfigFile(path)
			v.SetConfigType("yaml")
			if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
				return cfg, fmt.Errorf("configuration file %s: %v", path, err)
			}
			for _, ke := range config.KeyErrors(config.CheckKeys(data)) {
				problems = append(problems, withConfigSource(ke, path))
				failed[configBaseKey(ke.Key)] = true
			}
		case !explicit && errors.Is(err, fs.ErrNotExist):
			// No file: environment, flags and defaults.
		default:
			return cfg, fmt.Errorf("configuration file: %w", err)
		}
	}

	for _, k := range config.Keys() {
		err := decodeConfigValue(v.Get(k.Name), reflect.ValueOf(k.Ptr(&cfg)).Elem())
		if err == nil || failed[k.Name] {
			continue
		}
		failed[k.Name] = true
		ke := &config.KeyError{Key: k.Name, Err: err}
		var pe *configPathError
		if errors.As(err, &pe) {
			ke = &config.KeyError{Key: k.Name + pe.path, Err: pe.err}
		}
		problems = append(problems, withConfigSource(ke, configSource(v, k.Name)))
	}
	for _, ke := range config.KeyErrors(cfg.Validate()) {
		base := configBaseKey(ke.Key)
		if failed[base] {
			continue // already reported
		}
		problems = append(problems, withConfigSource(ke, configSource(v, base)))
	}
	if len(problems) > 0 {
		return cfg, &configError{problems}
	}
	return cfg, nil
}

// persistPath returns the file 'tcptap trace persist' writes: the file
// loadConfig read, else --config, else the default file (created then).
func persistPath(v *viper.Viper) string {
	if f := v.ConfigFileUsed(); f != "" {
		return f
	}
	if f := v.GetString(configKey); f != "" {
		return f
	}
	return defaultConfigFile
}

// configError lists the problems of a configuration, one per line.
type configError struct{ errs []error }

func (e *configError) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration:")
	for _, err := range e.errs {
		b.WriteString("\n  " + err.Error())
	}
	return b.String()
}

func (e *configError) Unwrap() []error { return e.errs }

// baseKey strips list indexes and element fields: snmp.users[0].view is
// key snmp.users.
func configBaseKey(key string) string {
	if i := strings.IndexByte(key, '['); i >= 0 {
		return key[:i]
	}
	return key
}

// source says where the value of key came from, by precedence.
func configSource(v *viper.Viper, key string) string {
	boundMu.Lock()
	fl := boundFlags[v]
	boundMu.Unlock()
	if fl != nil {
		if f := fl.Lookup(key); f != nil && f.Changed {
			return "--" + key
		}
	}
	if _, ok := os.LookupEnv(config.EnvName(key)); ok {
		return config.EnvName(key)
	}
	if v.InConfig(key) {
		return v.ConfigFileUsed()
	}
	return "the default"
}

// fromSource appends " (from SOURCE)" to a key's problem.
func withConfigSource(ke *config.KeyError, src string) *config.KeyError {
	return &config.KeyError{Key: ke.Key, Err: fmt.Errorf("%w (from %s)", ke.Err, src)}
}

// configPathError is a problem inside a list value: path is "[1]" or
// "[1].access".
type configPathError struct {
	path string
	err  error
}

func (e *configPathError) Error() string { return e.path + ": " + e.err.Error() }

var configDurationType = reflect.TypeFor[time.Duration]()

// decodeValue stores raw, a value as viper returns it (a typed default, a
// string from the environment or a flag, []string or []int from a list
// flag, or what YAML gives: string, bool, int, float64, []any,
// map[string]any, nil), into out. It is strict: a number is not a
// duration (300 would be 300ns), 2.5 is not a whole number, -1 is not a
// uint32, true is not a string. Strings split into lists at commas.
func decodeConfigValue(raw any, out reflect.Value) error {
	if raw != nil && reflect.TypeOf(raw) == out.Type() {
		out.Set(reflect.ValueOf(raw))
		return nil
	}
	if out.Kind() != reflect.Slice {
		v, err := configScalar(raw, out.Type())
		if err != nil {
			return err
		}
		out.Set(v)
		return nil
	}
	items, err := configListItems(raw)
	if err != nil {
		return err
	}
	list := reflect.MakeSlice(out.Type(), len(items), len(items))
	elem := out.Type().Elem()
	for i, it := range items {
		var err error
		if elem.Kind() == reflect.Struct {
			err = decodeConfigStruct(it, list.Index(i))
		} else {
			var v reflect.Value
			v, err = configScalar(it, elem)
			if err == nil {
				list.Index(i).Set(v)
			}
		}
		if err != nil {
			var pe *configPathError
			if errors.As(err, &pe) {
				return &configPathError{fmt.Sprintf("[%d]%s", i, pe.path), pe.err}
			}
			return &configPathError{fmt.Sprintf("[%d]", i), err}
		}
	}
	out.Set(list)
	return nil
}

// listItems returns the items of a list value; a string is split at
// commas (the environment's and a flag's form), each item trimmed.
func configListItems(raw any) ([]any, error) {
	switch r := raw.(type) {
	case nil:
		return nil, nil
	case string:
		if strings.TrimSpace(r) == "" {
			return nil, nil
		}
		var items []any
		for _, s := range strings.Split(r, ",") {
			items = append(items, strings.TrimSpace(s))
		}
		return items, nil
	}
	rv := reflect.ValueOf(raw)
	if rv.Kind() != reflect.Slice {
		return nil, fmt.Errorf("%s: want a list", showConfigValue(raw))
	}
	items := make([]any, rv.Len())
	for i := range items {
		items[i] = rv.Index(i).Interface()
	}
	return items, nil
}

// decodeStruct decodes one element of an SNMP list: a mapping with the
// struct's yaml keys, or the compact key=value text form.
func decodeConfigStruct(raw any, out reflect.Value) error {
	if raw != nil && reflect.TypeOf(raw) == out.Type() {
		out.Set(reflect.ValueOf(raw))
		return nil
	}
	var m map[string]any
	switch r := raw.(type) {
	case string:
		return out.Addr().Interface().(interface{ UnmarshalText([]byte) error }).UnmarshalText([]byte(r))
	case map[string]any:
		m = r
	case map[any]any:
		m = map[string]any{}
		for k, v := range r {
			m[fmt.Sprint(k)] = v
		}
	default:
		return fmt.Errorf("%s: want a mapping (name: ..., ...) or 'key=value ...'", showConfigValue(raw))
	}
	t := out.Type()
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		fields[name] = i
		names = append(names, name)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		i, ok := fields[k]
		if !ok {
			return &configPathError{"." + k, fmt.Errorf("unknown key; want %s", strings.Join(names, ", "))}
		}
		if err := decodeConfigValue(v, out.Field(i)); err != nil {
			var pe *configPathError
			if errors.As(err, &pe) {
				return &configPathError{"." + k + pe.path, pe.err}
			}
			return &configPathError{"." + k, err}
		}
	}
	return nil
}

// scalar converts raw to t: string, bool, int, uint32, float64 or
// time.Duration.
func configScalar(raw any, t reflect.Type) (reflect.Value, error) {
	out := reflect.New(t).Elem()
	s, isString := raw.(string)
	if isString {
		s = strings.TrimSpace(s)
	}
	num, isNum := configNumber(raw)
	switch {
	case t == configDurationType:
		if !isString {
			if isNum {
				return out, fmt.Errorf("%s: want a duration with a unit, such as %ss or %sm", showConfigValue(raw), showConfigValue(raw), showConfigValue(raw))
			}
			return out, fmt.Errorf("%s: want a duration such as 30s, 5m or 1h", showConfigValue(raw))
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return out, fmt.Errorf("%q: want a duration such as 30s, 5m or 1h", s)
		}
		out.SetInt(int64(d))
	case t.Kind() == reflect.String:
		switch {
		case isString:
			out.SetString(raw.(string))
		case isNum:
			out.SetString(strconv.FormatFloat(num, 'f', -1, 64))
		default:
			return out, fmt.Errorf("%s: want a string", showConfigValue(raw))
		}
	case t.Kind() == reflect.Bool:
		switch r := raw.(type) {
		case bool:
			out.SetBool(r)
		case string:
			b, err := strconv.ParseBool(s)
			if err != nil {
				return out, fmt.Errorf("%q: want true or false", s)
			}
			out.SetBool(b)
		default:
			return out, fmt.Errorf("%s: want true or false", showConfigValue(raw))
		}
	case t.Kind() == reflect.Int || t.Kind() == reflect.Uint32:
		lo, hi := float64(math.MinInt64), float64(math.MaxInt64)
		want := "want a whole number"
		if t.Kind() == reflect.Uint32 {
			lo, hi, want = 0, math.MaxUint32, "want a whole number from 0 to 4294967295"
		}
		if isString {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return out, fmt.Errorf("%q: %s", s, want)
			}
			num, isNum = float64(n), true
		}
		if !isNum || num != math.Trunc(num) || num < lo || num > hi {
			return out, fmt.Errorf("%s: %s", showConfigValue(raw), want)
		}
		if t.Kind() == reflect.Uint32 {
			out.SetUint(uint64(num))
		} else {
			out.SetInt(int64(num))
		}
	case t.Kind() == reflect.Float64:
		if isString {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return out, fmt.Errorf("%q: want a number", s)
			}
			num, isNum = f, true
		}
		if !isNum {
			return out, fmt.Errorf("%s: want a number", showConfigValue(raw))
		}
		out.SetFloat(num)
	default:
		return out, fmt.Errorf("no decoder for %v", t)
	}
	return out, nil
}

// number returns a numeric raw value as a float64.
func configNumber(raw any) (float64, bool) {
	rv := reflect.ValueOf(raw)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}

// show renders a raw value in a message.
func showConfigValue(raw any) string {
	switch r := raw.(type) {
	case string:
		return strconv.Quote(r)
	case nil:
		return "nothing"
	case []any, map[string]any:
		return fmt.Sprintf("%T", r)
	}
	return fmt.Sprint(raw)
}
