package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/routeguide/routeguide/internal/grpcclient"
	"github.com/routeguide/routeguide/internal/people"
)

func historyCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history NAME [--limit N]",
		Short: "List a person's changes still in the change log, newest first, with who made each",
		Long: `List the changes to one person that the directory's change log still holds,
newest first: the revision, when, who (a token's name, a client certificate's
subject, or local), from which address, and what changed. Changes made before
the directory recorded who made them show "-".`,
		Args: exactlyOneName("history"),
	}
	var limit int
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many changes, 1 to 1000")
	cfg := addClientFlags(e, cmd, true)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if limit < 1 || limit > 1000 {
			return usageError{fmt.Errorf("--limit %d: must be from 1 to 1000", limit)}
		}
		c, err := cfg.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := cfg.callContext(cmd.Context())
		defer cancel()
		changes, err := c.History(ctx, args[0], limit)
		if err != nil {
			return fail(cfg.describe(err))
		}
		if cfg.Output == "json" {
			print := eventWriter(e.stdout, "json")
			for _, ev := range changes {
				if err := print(ev); err != nil {
					return fail(err)
				}
			}
			return nil
		}
		if len(changes) == 0 {
			fmt.Fprintf(e.stderr, "routeguide: no change to %q is in the change log\n", args[0])
			return exitSilently{}
		}
		return fail(writeHistory(e.stdout, changes))
	}
	return cmd
}

// writeHistory prints changes, newest first, as a table; what each change
// did is told against the change before it, when the list holds it.
func writeHistory(w io.Writer, changes []grpcclient.Event) error {
	t := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(t, "REVISION\tTIME\tWHO\tPEER\tCHANGE")
	for i, ev := range changes {
		when, who, peer := "-", "-", "-"
		if !ev.Origin.Time.IsZero() {
			when = ev.Origin.Time.UTC().Format(time.RFC3339)
		}
		if ev.Origin.Principal != "" {
			who = ev.Origin.Principal
		}
		if ev.Origin.Peer != "" {
			peer = ev.Origin.Peer
		}
		var before *people.Person
		if i+1 < len(changes) && changes[i+1].Type != grpcclient.EventDeleted {
			before = &changes[i+1].Person
		}
		fmt.Fprintf(t, "%d\t%s\t%s\t%s\t%s\n", ev.Revision, when, who, peer, whatChanged(ev, before))
	}
	return t.Flush()
}

// whatChanged says what ev did: for an update of a person whose previous
// version is before, the fields it changed.
func whatChanged(ev grpcclient.Event, before *people.Person) string {
	switch ev.Type {
	case grpcclient.EventDeleted:
		return "deleted"
	case grpcclient.EventAdded:
		return "added: " + textLine(ev.Person)
	}
	if before == nil {
		return "updated to: " + textLine(ev.Person)
	}
	a, b := *before, ev.Person
	var diffs []string
	diff := func(field, from, to string) {
		if from != to {
			diffs = append(diffs, fmt.Sprintf("%s %s -> %s", field, from, to))
		}
	}
	diff("age", fmt.Sprint(a.Age), fmt.Sprint(b.Age))
	diff("gender", a.Gender.String(), b.Gender.String())
	if !slices.Equal(a.Hobbies, b.Hobbies) {
		diff("hobbies", "["+strings.Join(a.Hobbies, ", ")+"]", "["+strings.Join(b.Hobbies, ", ")+"]")
	}
	diff("street", quoteEmpty(a.Address.Street), quoteEmpty(b.Address.Street))
	diff("city", quoteEmpty(a.Address.City), quoteEmpty(b.Address.City))
	if len(diffs) == 0 {
		return "updated"
	}
	return "updated " + strings.Join(diffs, ", ")
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}
