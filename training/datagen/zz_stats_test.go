package datagen

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
)

func TestZZStats(t *testing.T) {
	if os.Getenv("DGSTATS") == "" {
		t.Skip()
	}
	cfg := Config{}
	if os.Getenv("DGBIG") != "" {
		cfg = Config{Users: 50000, Items: 20000}
	}
	t0 := time.Now()
	w, _ := newWorld(cfg)
	ds := w.generate()
	el := time.Since(t0)
	cnt := map[dataset.Event]int{}
	sess := map[string]bool{}
	itemCnt := map[string]int{}
	userCnt := map[string]int{}
	for _, in := range ds.Interactions {
		cnt[in.Event]++
		if in.SessionID != "" {
			sess[in.SessionID] = true
		}
		itemCnt[in.ItemID]++
		userCnt[in.UserID]++
	}
	fmt.Printf("time %v interactions %d views %d carts %d purchases %d ratings %d sessions %d\n", el, len(ds.Interactions), cnt[dataset.View], cnt[dataset.Cart], cnt[dataset.Purchase], cnt[dataset.Rating], len(sess))
	var ic []int
	for _, c := range itemCnt {
		ic = append(ic, c)
	}
	slices.Sort(ic)
	slices.Reverse(ic)
	top := 0
	for _, c := range ic[:len(ds.Items)/10] {
		top += c
	}
	fmt.Printf("items with events %d/%d top10%% share %.3f\n", len(ic), len(ds.Items), float64(top)/float64(len(ds.Interactions)))
	var uc []int
	for _, c := range userCnt {
		uc = append(uc, c)
	}
	slices.Sort(uc)
	fmt.Printf("users with events %d; per-user p10 %d p50 %d p90 %d p99 %d max %d\n", len(uc), uc[len(uc)/10], uc[len(uc)/2], uc[len(uc)*9/10], uc[len(uc)*99/100], uc[len(uc)-1])
	// follow fraction
	idx := map[string]int{}
	for i, it := range ds.Items {
		idx[it.ID] = i
	}
	prev := map[string]int{}
	follow, pairs := 0, 0
	for _, in := range ds.Interactions {
		if in.Event != dataset.View {
			continue
		}
		i := idx[in.ItemID]
		if p, ok := prev[in.SessionID]; ok {
			pairs++
			if slices.Contains(w.items[p].succ, int32(i)) {
				follow++
			}
		}
		prev[in.SessionID] = i
	}
	fmt.Printf("view pairs %d follow frac %.3f\n", pairs, float64(follow)/float64(pairs))
	for _, it := range ds.Items[:5] {
		fmt.Printf("%+v\n", it)
	}
	for _, it := range ds.Items {
		if it.Category == "tea" || it.Category == "stationery" {
			fmt.Printf("%+v\n", it)
			break
		}
	}
	fmt.Println(ds.Users[0], ds.Interactions[:3])
}
