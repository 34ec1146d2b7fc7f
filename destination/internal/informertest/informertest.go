// Package informertest lets tests over client-go's fake clientsets know when
// their informers watch. The fakes do not replay changes made between an
// informer's list and its watch, so a test must wait until every informer
// watches before it changes objects.
package informertest

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiwatch "k8s.io/apimachinery/pkg/watch"
	clienttesting "k8s.io/client-go/testing"
)

// Fake is a fake clientset (typed, metadata or dynamic).
type Fake interface {
	PrependWatchReactor(resource string, reaction clienttesting.WatchReactionFunc)
	Tracker() clienttesting.ObjectTracker
}

// Waiter counts the resources watched through the fakes it is attached to.
type Waiter struct {
	mu       sync.Mutex
	want     int
	watching map[schema.GroupVersionResource]bool
	all      chan struct{}
}

// New returns a Waiter whose All is closed once resources distinct
// resources are watched.
func New(resources int) *Waiter {
	return &Waiter{want: resources, watching: map[schema.GroupVersionResource]bool{}, all: make(chan struct{})}
}

// Attach makes f's watches count.
func (w *Waiter) Attach(f Fake) {
	tracker := f.Tracker()
	f.PrependWatchReactor("*", func(action clienttesting.Action) (bool, apiwatch.Interface, error) {
		var opts metav1.ListOptions
		if wa, ok := action.(clienttesting.WatchActionImpl); ok {
			opts = wa.ListOptions
		}
		watch, err := tracker.Watch(action.GetResource(), action.GetNamespace(), opts)
		if err != nil {
			return false, nil, err
		}
		w.mu.Lock()
		if !w.watching[action.GetResource()] {
			w.watching[action.GetResource()] = true
			if len(w.watching) == w.want {
				close(w.all)
			}
		}
		w.mu.Unlock()
		return true, watch, nil
	})
}

// All is closed once every expected resource is watched.
func (w *Waiter) All() <-chan struct{} { return w.all }
