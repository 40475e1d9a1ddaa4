package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/routeguide/routeguide/internal/grpcclient"
	"github.com/routeguide/routeguide/internal/people"
)

// personFlags are the flags that describe a person, shared by add and
// update.
type personFlags struct {
	p            people.Person
	gender       string
	clearHobbies bool
	// fields holds, for each flag, the field of a person it sets.
	fields map[string]people.Field
}

// register adds the flags to f. For update, which changes only the fields
// given, the flags show no defaults and --clear-hobbies is added.
func (pf *personFlags) register(f *pflag.FlagSet, forUpdate bool) {
	pf.fields = make(map[string]people.Field)
	sets := func(field people.Field, flag string) string {
		pf.fields[flag] = field
		return flag
	}
	f.Int32Var(&pf.p.Age, sets(people.FieldAge, "age"), 0, "age in years, 0 to 150")
	if forUpdate {
		f.StringVar(&pf.gender, sets(people.FieldGender, "gender"), "", "female, male or unknown")
	} else {
		f.StringVar(&pf.gender, sets(people.FieldGender, "gender"), "unknown", "female, male or unknown")
	}
	f.StringArrayVar(&pf.p.Hobbies, sets(people.FieldHobbies, "hobby"), nil, "a hobby; repeat for several")
	f.StringVar(&pf.p.Address.Street, sets(people.FieldStreet, "street"), "", "street address")
	f.StringVar(&pf.p.Address.City, sets(people.FieldCity, "city"), "", "city")
	if forUpdate {
		f.BoolVar(&pf.clearHobbies, "clear-hobbies", false, "remove every hobby")
	}
}

// changed returns the fields whose flags were given, and the hobbies when
// --clear-hobbies is true.
func (pf *personFlags) changed(f *pflag.FlagSet) people.Field {
	var fields people.Field
	for flag, field := range pf.fields {
		if f.Changed(flag) {
			fields |= field
		}
	}
	if pf.clearHobbies {
		fields |= people.FieldHobbies
	}
	return fields
}

// person returns the person the flags describe.
func (pf *personFlags) person() (people.Person, error) {
	g, err := people.ParseGender(pf.gender)
	if err != nil {
		return people.Person{}, usageError{fmt.Errorf("--gender: %w", err)}
	}
	p := pf.p
	p.Gender = g
	return p, nil
}

func addCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add --name NAME [--age N] [--gender female|male|unknown] [--hobby H]... [--street S] [--city C]",
		Short: "Add a person",
		Args:  noArgs,
	}
	var pf personFlags
	var name string
	cmd.Flags().StringVar(&name, "name", "", "the person's name (required)")
	pf.register(cmd.Flags(), false)
	cfg := addClientFlags(e, cmd, true)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if name == "" {
			return usageError{errors.New("add needs --name")}
		}
		p, err := pf.person()
		if err != nil {
			return err
		}
		p.Name = name
		return withClient(cmd.Context(), cfg, func(ctx context.Context, c *grpcclient.Client) error {
			added, _, err := c.Add(ctx, p)
			if err != nil {
				return err
			}
			return personWriter(e.stdout, cfg.Output)(added)
		})
	}
	return cmd
}

func updateCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "update NAME [--age N] [--gender G] [--hobby H]... [--clear-hobbies] [--street S] [--city C]",
		Short: "Change some fields of a person; fields not given stay as they are",
		Args:  exactlyOneName("update"),
	}
	var pf personFlags
	pf.register(cmd.Flags(), true)
	var ifMatch string
	cmd.Flags().StringVar(&ifMatch, "if-match", "", "update only if the person's etag is still this one (get -o json shows it)")
	cfg := addClientFlags(e, cmd, true)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		to, err := pf.person()
		if err != nil {
			return err
		}
		fields := pf.changed(cmd.Flags())
		if fields == 0 {
			return usageError{errors.New("update needs at least one field to change")}
		}
		if pf.clearHobbies {
			if len(to.Hobbies) > 0 {
				return usageError{errors.New("--clear-hobbies and --hobby contradict each other")}
			}
			to.Hobbies = nil
		}
		return withClient(cmd.Context(), cfg, func(ctx context.Context, c *grpcclient.Client) error {
			updated, _, err := c.Update(ctx, args[0], people.Update{Fields: fields, To: to}, grpcclient.IfMatch(ifMatch))
			if err != nil {
				return err
			}
			return personWriter(e.stdout, cfg.Output)(updated)
		})
	}
	return cmd
}

func deleteCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete NAME...",
		Short: "Remove people",
		Long: `Remove people by name, one DeletePerson call each. A name nobody has is
reported on stderr, the other names are still deleted, and the exit status
is 1.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("delete needs at least one NAME")}
			}
			return nil
		},
	}
	var ifMatch string
	cmd.Flags().StringVar(&ifMatch, "if-match", "", "delete only if the person's etag is still this one (get -o json shows it); one NAME only")
	cfg := addClientFlags(e, cmd, false)
	cmd.RunE = func(cmd *cobra.Command, names []string) error {
		if ifMatch != "" && len(names) != 1 {
			return usageError{fmt.Errorf("--if-match names one person's etag: give one NAME, not %d", len(names))}
		}
		c, err := cfg.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		failed := 0
		for _, name := range names {
			ctx, cancel := cfg.callContext(cmd.Context())
			_, err := c.Delete(ctx, name, grpcclient.IfMatch(ifMatch))
			cancel()
			switch people.KindOf(err) {
			case people.NotFound, people.Invalid:
				// About this name only: the others are still deleted.
				failed++
				fmt.Fprintf(e.stderr, "routeguide: %v\n", cfg.describe(err))
				continue
			}
			if err != nil {
				return fail(cfg.describe(err))
			}
			fmt.Fprintf(e.stdout, "deleted %s\n", name)
		}
		if failed > 0 {
			return exitSilently{}
		}
		return nil
	}
	return cmd
}

func listCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list [--city C] [--hobby H] [--prefix P] [--limit N]",
		Short: "List people by name, as a table or (-o json) one person a line",
		Args:  noArgs,
	}
	var q people.Query
	f := cmd.Flags()
	f.StringVar(&q.City, "city", "", "only people in exactly this city")
	f.StringVar(&q.Hobby, "hobby", "", "only people with exactly this hobby")
	f.StringVar(&q.NamePrefix, "prefix", "", "only people whose name starts with this")
	f.IntVar(&q.Limit, "limit", 0, "at most this many people; 0 lists everyone")
	cfg := addClientFlags(e, cmd, true)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if q.Limit < 0 {
			return usageError{fmt.Errorf("--limit %d: must not be negative", q.Limit)}
		}
		c, err := cfg.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		print := etagWriter(e.stdout, cfg.Output)
		var table *tabwriter.Writer
		if cfg.Output == "text" {
			table = tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(table, "NAME\tAGE\tGENDER\tCITY\tSTREET\tHOBBIES")
			print = func(p people.Person, _ string) error {
				_, err := fmt.Fprintf(table, "%s\t%d\t%s\t%s\t%s\t%s\n", p.Name, p.Age, p.Gender, p.Address.City, p.Address.Street, strings.Join(p.Hobbies, ", "))
				return err
			}
		}
		err = c.ListETags(cmd.Context(), q, cfg.callContext, print)
		if table != nil {
			if ferr := table.Flush(); err == nil {
				err = ferr
			}
		}
		return fail(cfg.describe(err))
	}
	return cmd
}

func watchCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch [--from REVISION] [--current]",
		Short: "Print changes to the directory as they happen",
		Long: `Print every change to the directory as it happens, one a line, until
interrupted. Each line starts with the change's revision; --from resumes after
a revision printed earlier. --current prints everyone first.

When the replica serving the watch stops, drains or loses its connection,
the watch reconnects by itself, after a backoff of up to 3s, and resumes
after the last revision it printed: every change is printed once, in order.
Each reconnection is noted on stderr; stdout has only the changes.

The watch has no deadline unless --timeout or ROUTEGUIDE_TIMEOUT sets one.`,
		Args: noArgs,
	}
	var from int64
	var current bool
	cmd.Flags().Int64Var(&from, "from", 0, "print the changes after this revision; 0 starts with the next change")
	cmd.Flags().BoolVar(&current, "current", false, "print every current person first")
	cfg := addClientFlags(e, cmd, true)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if from < 0 {
			return usageError{fmt.Errorf("--from %d: must not be negative", from)}
		}
		if current && from != 0 {
			return usageError{errors.New("--current and --from contradict each other: --current starts from now")}
		}
		cfg.openEnded()
		c, err := cfg.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := cfg.callContext(cmd.Context())
		defer cancel()
		events := 0
		err = c.Watch(ctx, current, from, reconnectNote(e.stderr, cfg), counting(&events, eventWriter(e.stdout, cfg.Output)))
		if cmd.Context().Err() != nil {
			// Interrupted: the normal way a watch ends. (A call the server
			// cancelled also reads as context.Canceled, and is reported.)
			return nil
		}
		return fail(cfg.describeStream(err, events))
	}
	return cmd
}

// reconnectNote returns the function that tells the user on stderr that a
// watch is reconnecting, and why; stdout, which scripts read, has only the
// events.
func reconnectNote(w io.Writer, cfg *clientConfig) func(grpcclient.Reconnect) {
	return func(r grpcclient.Reconnect) {
		what := fmt.Sprintf("after revision %d", r.After)
		if r.Listing {
			what = "the listing of current people"
		}
		fmt.Fprintf(w, "routeguide: the watch was cut (%v); resuming %s in %s\n", cfg.describe(r.Err), what, shortDuration(r.Delay))
	}
}

// eventWriter returns a function that prints one watch event to w.
func eventWriter(w io.Writer, output string) func(grpcclient.Event) error {
	if output == "json" {
		var buf []byte
		return func(ev grpcclient.Event) error {
			var err error
			if buf, err = ev.AppendJSON(buf[:0]); err != nil {
				return err
			}
			buf = append(buf, '\n')
			_, err = w.Write(buf)
			return err
		}
	}
	return func(ev grpcclient.Event) error {
		line := strconv.FormatInt(ev.Revision, 10) + " " + ev.Type.String()
		switch ev.Type {
		case grpcclient.EventSynced:
		case grpcclient.EventDeleted:
			line += " " + ev.Person.Name
		default:
			line += " " + textLine(ev.Person)
		}
		if o := ev.Origin; o.Principal != "" {
			line += "  by " + o.Principal + " from " + o.Peer
			if o.RequestID != "" {
				line += " request " + o.RequestID
			}
		}
		_, err := io.WriteString(w, line+"\n")
		return err
	}
}

// withClient connects, runs fn with one call's context, and describes its
// failure.
func withClient(ctx context.Context, cfg *clientConfig, fn func(ctx context.Context, c *grpcclient.Client) error) error {
	c, err := cfg.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := cfg.callContext(ctx)
	defer cancel()
	return fail(cfg.describe(fn(ctx, c)))
}

// exactlyOneName refuses anything but one NAME argument.
func exactlyOneName(cmd string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageError{fmt.Errorf("%s needs exactly one NAME, got %d arguments", cmd, len(args))}
		}
		return nil
	}
}
