// Package seedserver is the seed's RouteGuide service as plain grpc-go code:
// GetPerson and GetPeople from a map of the seed's two people, behaving as
// the seed's server does. GetPerson answers a name nobody has with the "Not
// Found" person, and GetPeople answers each name as it arrives, in order,
// skipping unknown names. The other methods answer UNIMPLEMENTED.
//
// It is the service of the bare servers RouteGuide is measured against:
// bench/baseline (gRPC) and bench/gateway (REST through grpc-gateway).
package seedserver

import (
	"context"
	"io"

	"google.golang.org/grpc"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// server is the seed's RouteGuide: two people in a map that never changes,
// so it needs no lock.
type server struct {
	pb.UnimplementedRouteGuideServer
	people map[string]*pb.Person
}

// notFound is the seed's answer to a name nobody has.
var notFound = &pb.Person{Name: "Not Found"}

// New returns the seed's service.
func New() pb.RouteGuideServer {
	return &server{people: map[string]*pb.Person{
		"Alice": {
			Name:    "Alice",
			Age:     30,
			Gender:  pb.Person_FEMALE,
			Hobbies: []string{"reading", "swimming"},
			Address: &pb.Person_Address{Street: "123 Main St", City: "New York"},
		},
		"Bob": {
			Name:    "Bob",
			Age:     25,
			Gender:  pb.Person_MALE,
			Hobbies: []string{"gaming", "cycling"},
			Address: &pb.Person_Address{Street: "456 Elm St", City: "Los Angeles"},
		},
	}}
}

func (s *server) GetPerson(_ context.Context, req *pb.Name) (*pb.Person, error) {
	if p, ok := s.people[req.GetName()]; ok {
		return p, nil
	}
	return notFound, nil
}

func (s *server) GetPeople(stream grpc.BidiStreamingServer[pb.Name, pb.Person]) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if p, ok := s.people[req.GetName()]; ok {
			if err := stream.Send(p); err != nil {
				return err
			}
		}
	}
}
