package sqlite

import (
	"time"

	"github.com/routeguide/routeguide/internal/people"
)

// After each group of writes commits, the read cache reads the group's
// changes back from the log (as every watcher does): two queries and a
// row decoded per change, a tenth of the server's CPU under a load of
// concurrent additions. So the Store keeps the changes of its last groups
// in memory, exactly as Changes would read them back, and Changes answers
// from them when they hold the change asked for. As with an import's
// changes (imported.go), one process serves one file, so no change can
// reach the file other than through this Store; a group's changes are
// kept only once it has committed, and before its revision is announced
// to WaitChange, so that the reader it wakes finds them.

// recentKept is how many changes Store.recent holds at least
// (people.RecentChanges.Keep), once as many were committed: a full
// group's. It holds fewer than maxGroup more, so a reader one group behind
// usually still finds its changes. At people.MaxPersonBytes each, with
// their origins, that is some 6 MiB at worst; a few hundred KiB for people
// as they usually are.
const recentKept = maxGroup

// asRead returns the change a group logs, as scanChange reads it back:
// hobbies as decodeHobbies reads hobbies, the column personArgs wrote them
// to, and the origin's time to the millisecond in local time.
func asRead(rev int64, typ people.ChangeType, p people.Person, hobbies string, origin people.Origin) (people.Change, error) {
	var err error
	if p.Hobbies, err = decodeHobbies(hobbies); err != nil {
		return people.Change{}, err
	}
	if ms := origin.Time.UnixMilli(); ms != 0 {
		origin.Time = time.UnixMilli(ms)
	} else {
		origin.Time = time.Time{}
	}
	return people.Change{Revision: rev, Type: typ, Person: p, Origin: origin}, nil
}
