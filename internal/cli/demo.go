package cli

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/routeguide/routeguide/internal/people"
)

func demoCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Make the seed client's calls and print its three lines",
		Long: `Make exactly the calls of the seed's Python client: GetPerson for Alice,
then GetPeople for Alice, Bob and Charlie, printing each answer in the seed
client's format, byte for byte.`,
		Args: noArgs,
	}
	cfg := addClientFlags(e, cmd, false)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cfg.connect()
		if err != nil {
			return err
		}
		defer c.Close()

		ctx, cancel := cfg.callContext(cmd.Context())
		defer cancel()
		p, err := c.Person(ctx, "Alice")
		if people.KindOf(err) == people.NotFound {
			// The seed client prints the server's "Not Found" person as is.
			p, err = people.Person{Name: people.NotFoundName}, nil
		}
		if err != nil {
			return fail(cfg.describe(err))
		}
		if _, err := fmt.Fprintln(e.stdout, seedLine("GetPerson", p)); err != nil {
			return fail(err)
		}

		ctx, cancel = cfg.callContext(cmd.Context())
		defer cancel()
		err = c.People(ctx, slices.Values([]string{"Alice", "Bob", "Charlie"}), func(p people.Person) error {
			_, err := fmt.Fprintln(e.stdout, seedLine("GetPeople", p))
			return err
		})
		return fail(cfg.describe(err))
	}
	return cmd
}
