package datagen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/recserve/recserve/dataset"
)

type evalData struct {
	ds    *dataset.Dataset
	items map[string]int
	users map[string]int
	nI    int
}

func topK(scores []float64, excl map[int]bool, k int) []int {
	idx := make([]int, 0, len(scores))
	for i, s := range scores {
		if !excl[i] && s > math.Inf(-1) {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	if len(idx) > k {
		idx = idx[:k]
	}
	return idx
}

func ndcg(rec []int, rel map[int]bool) float64 {
	dcg, idcg := 0.0, 0.0
	for i, r := range rec {
		if rel[r] {
			dcg += 1 / math.Log2(float64(i+2))
		}
	}
	for i := 0; i < min(len(rel), len(rec)); i++ {
		idcg += 1 / math.Log2(float64(i+2))
	}
	if idcg == 0 {
		return 0
	}
	return dcg / idcg
}

// itemSims computes cosine item-item similarity from user histories.
func itemSims(hist [][]int, nI int) [][]float64 {
	co := make([][]float64, nI)
	for i := range co {
		co[i] = make([]float64, nI)
	}
	cnt := make([]float64, nI)
	for _, h := range hist {
		for _, a := range h {
			cnt[a]++
			for _, b := range h {
				if a != b {
					co[a][b]++
				}
			}
		}
	}
	for a := range co {
		for b := range co[a] {
			if co[a][b] > 0 {
				co[a][b] /= math.Sqrt(cnt[a] * cnt[b])
			}
		}
	}
	return co
}

func TestZZEval(t *testing.T) {
	if os.Getenv("DGEVAL") == "" {
		t.Skip()
	}
	if v := envF("DGSMIN"); v > 0 {
		succMin = int(v)
	}
	if v := envF("DGSMAX"); v > 0 {
		succMax = int(v)
	}
	if v := envF("DGSPOW"); v > 0 {
		succPow = v
	}
	if v := envF("DGIB"); v > 0 {
		intentBoost = v
	}
	if v := envF("DGIO"); v > 0 {
		intentOther = v
	}
	if v := envF("DGDECAY"); v > 0 {
		succDecay = v
	}
	w, _ := newWorld(Config{FollowProb: envF("DGFOLLOW")})
	ds := w.generate()
	nI := len(ds.Items)
	itemIdx := map[string]int{}
	for i, it := range ds.Items {
		itemIdx[it.ID] = i
	}
	userIdx := map[string]int{}
	for i, u := range ds.Users {
		userIdx[u.ID] = i
	}
	nU := len(ds.Users)
	rng := rand.New(rand.NewPCG(7, 7))

	// ---------- random split ----------
	distinct := make([][]int, nU)
	seen := make([]map[int]bool, nU)
	for u := range seen {
		seen[u] = map[int]bool{}
	}
	for _, in := range ds.Interactions {
		u, i := userIdx[in.UserID], itemIdx[in.ItemID]
		if !seen[u][i] {
			seen[u][i] = true
			distinct[u] = append(distinct[u], i)
		}
	}
	train := make([][]int, nU)
	test := make([]map[int]bool, nU)
	for u, h := range distinct {
		test[u] = map[int]bool{}
		for _, i := range h {
			if len(h) >= 5 && rng.Float64() < 0.2 {
				test[u][i] = true
			} else {
				train[u] = append(train[u], i)
			}
		}
	}
	evalTopN := func(name string, train [][]int, test []map[int]bool) {
		if os.Getenv("DGTOPN") == "" {
			return
		}
		pop := make([]float64, nI)
		for _, h := range train {
			for _, i := range h {
				pop[i]++
			}
		}
		sims := itemSims(train, nI)
		// user knn
		inv := make([][]int, nI)
		for u, h := range train {
			for _, i := range h {
				inv[i] = append(inv[i], u)
			}
		}
		var nP, nK, nUK float64
		n := 0
		for u := range train {
			if len(test[u]) == 0 || len(train[u]) == 0 {
				continue
			}
			if n >= 1500 {
				break
			}
			n++
			excl := map[int]bool{}
			for _, i := range train[u] {
				excl[i] = true
			}
			nP += ndcg(topK(pop, excl, 10), test[u])
			sc := make([]float64, nI)
			for _, j := range train[u] {
				for i, s := range sims[j] {
					sc[i] += s
				}
			}
			nK += ndcg(topK(sc, excl, 10), test[u])
			// user knn
			ov := map[int]float64{}
			for _, i := range train[u] {
				for _, v := range inv[i] {
					if v != u {
						ov[v]++
					}
				}
			}
			type nb struct {
				v int
				s float64
			}
			var nbs []nb
			for v, o := range ov {
				nbs = append(nbs, nb{v, o / math.Sqrt(float64(len(train[u])*len(train[v])))})
			}
			sort.Slice(nbs, func(a, b int) bool {
				if nbs[a].s != nbs[b].s {
					return nbs[a].s > nbs[b].s
				}
				return nbs[a].v < nbs[b].v
			})
			if len(nbs) > 50 {
				nbs = nbs[:50]
			}
			sc2 := make([]float64, nI)
			for _, x := range nbs {
				for _, i := range train[x.v] {
					sc2[i] += x.s
				}
			}
			nUK += ndcg(topK(sc2, excl, 10), test[u])
		}
		fmt.Printf("%s: users %d NDCG@10 pop %.4f itemknn %.4f (%.2fx) userknn %.4f (%.2fx)\n", name, n, nP/float64(n), nK/float64(n), nK/nP, nUK/float64(n), nUK/nP)
	}
	evalTopN("random", train, test)

	// ---------- time split ----------
	ts := make([]int64, len(ds.Interactions))
	for i, in := range ds.Interactions {
		ts[i] = in.Timestamp
	}
	cut := ts[len(ts)*8/10]
	trainT := make([][]int, nU)
	testT := make([]map[int]bool, nU)
	seenT := make([]map[int]bool, nU)
	for u := range testT {
		testT[u] = map[int]bool{}
		seenT[u] = map[int]bool{}
	}
	for _, in := range ds.Interactions {
		u, i := userIdx[in.UserID], itemIdx[in.ItemID]
		if in.Timestamp < cut {
			if !seenT[u][i] {
				seenT[u][i] = true
				trainT[u] = append(trainT[u], i)
			}
		}
	}
	trainCnt := make([]int, nI)
	for _, h := range trainT {
		for _, i := range h {
			trainCnt[i]++
		}
	}
	for _, in := range ds.Interactions {
		u, i := userIdx[in.UserID], itemIdx[in.ItemID]
		if in.Timestamp >= cut && !seenT[u][i] {
			testT[u][i] = true
		}
	}
	evalTopN("time", trainT, testT)

	// ---------- next item (time split) ----------
	type sessSeq struct{ items []int }
	seqs := map[string][]int{}
	sessStart := map[string]int64{}
	var order []string
	for _, in := range ds.Interactions {
		if in.Event != dataset.View {
			continue
		}
		if _, ok := seqs[in.SessionID]; !ok {
			order = append(order, in.SessionID)
			sessStart[in.SessionID] = in.Timestamp
		}
		seqs[in.SessionID] = append(seqs[in.SessionID], itemIdx[in.ItemID])
	}
	trans := make([]map[int]float64, nI)
	for i := range trans {
		trans[i] = map[int]float64{}
	}
	var trainSess [][]int
	for _, s := range order {
		if sessStart[s] < cut {
			q := seqs[s]
			trainSess = append(trainSess, q)
			for k := 1; k < len(q); k++ {
				trans[q[k-1]][q[k]]++
			}
		}
	}
	simsSess := itemSims(trainSess, nI)
	simsUser := itemSims(trainT, nI)
	popT := make([]float64, nI)
	for i, c := range trainCnt {
		popT[i] = float64(c)
	}
	var hm, hkS, hkU, hkH, hkUP, hp, np float64
	for _, s := range order {
		if sessStart[s] < cut {
			continue
		}
		q := seqs[s]
		for k := 1; k < len(q); k++ {
			excl := map[int]bool{}
			for _, i := range q[:k] {
				excl[i] = true
			}
			tgt := map[int]bool{q[k]: true}
			last := q[k-1]
			sc := make([]float64, nI)
			for i := range sc {
				sc[i] = popT[i] * 1e-9
			}
			for j, c := range trans[last] {
				sc[j] += c
			}
			if len(topK(sc, excl, 10)) > 0 && slices.Contains(topK(sc, excl, 10), q[k]) {
				hm++
			}
			sc2 := make([]float64, nI)
			for i := range sc2 {
				sc2[i] = popT[i]*1e-9 + simsSess[last][i]
			}
			if slices.Contains(topK(sc2, excl, 10), q[k]) {
				hkS++
			}
			sc3 := make([]float64, nI)
			for i := range sc3 {
				sc3[i] = popT[i]*1e-9 + simsUser[last][i]
			}
			if slices.Contains(topK(sc3, excl, 10), q[k]) {
				hkU++
			}
			// knn over whole session prefix
			sc4 := make([]float64, nI)
			for i := range sc4 {
				sc4[i] = popT[i] * 1e-9
			}
			for _, j := range q[:k] {
				for i, s := range simsSess[j] {
					sc4[i] += s
				}
			}
			if slices.Contains(topK(sc4, excl, 10), q[k]) {
				hkH++
			}
			sc5 := make([]float64, nI)
			for i := range sc5 {
				sc5[i] = popT[i] * 1e-9
			}
			for _, j := range q[:k] {
				for i, s := range simsUser[j] {
					sc5[i] += s
				}
			}
			if slices.Contains(topK(sc5, excl, 10), q[k]) {
				hkUP++
			}
			if slices.Contains(topK(popT, excl, 10), q[k]) {
				hp++
			}
			_ = tgt
			np++
		}
		if np > 20000 {
			break
		}
	}
	fmt.Printf("next-item HR@10 (n=%.0f): markov %.4f itemknn-sess-last %.4f itemknn-user-last %.4f itemknn-sess-prefix %.4f itemknn-user-prefix %.4f pop %.4f ; markov/best knn %.2f\n", np, hm/np, hkS/np, hkU/np, hkH/np, hkUP/np, hp/np, hm/max(hkS, hkU, hkH))

	// ---------- cold start content ----------
	tok := func(s string) []string {
		var out []string
		var cur []rune
		flush := func() {
			if len(cur) == 0 {
				return
			}
			if unicode.Is(unicode.Han, cur[0]) {
				if len(cur) == 1 {
					out = append(out, string(cur))
				}
				for k := 0; k+1 < len(cur); k++ {
					out = append(out, string(cur[k:k+2]))
				}
			} else {
				out = append(out, strings.ToLower(string(cur)))
			}
			cur = cur[:0]
		}
		for _, r := range s {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				if len(cur) > 0 && unicode.Is(unicode.Han, r) != unicode.Is(unicode.Han, cur[0]) {
					flush()
				}
				cur = append(cur, r)
			} else {
				flush()
			}
		}
		flush()
		return out
	}
	df := map[string]float64{}
	docs := make([]map[string]float64, nI)
	for i, it := range ds.Items {
		docs[i] = map[string]float64{}
		for _, tk := range tok(it.Title + " " + it.Brand + " " + it.Category + " " + it.Description) {
			docs[i][tk]++
		}
		for tk := range docs[i] {
			df[tk]++
		}
	}
	for i := range docs {
		norm := 0.0
		for tk, tf := range docs[i] {
			v := (1 + math.Log(tf)) * math.Log(float64(nI)/df[tk])
			docs[i][tk] = v
			norm += v * v
		}
		for tk := range docs[i] {
			docs[i][tk] /= math.Sqrt(norm)
		}
	}
	var cold []int
	for i := range nI {
		if trainCnt[i] == 0 {
			cold = append(cold, i)
		}
	}
	var nc, npop, ncnt float64
	for u := range nU {
		rel := map[int]bool{}
		for i := range testT[u] {
			if trainCnt[i] == 0 {
				rel[i] = true
			}
		}
		if len(rel) == 0 || len(trainT[u]) == 0 {
			continue
		}
		prof := map[string]float64{}
		for _, i := range trainT[u] {
			for tk, v := range docs[i] {
				prof[tk] += v
			}
		}
		sc := make([]float64, nI)
		sp := make([]float64, nI)
		for i := range sc {
			sc[i] = math.Inf(-1)
			sp[i] = math.Inf(-1)
		}
		for _, i := range cold {
			s := 0.0
			for tk, v := range docs[i] {
				s += v * prof[tk]
			}
			sc[i] = s
			sp[i] = 0
		}
		nc += ndcg(topK(sc, nil, 10), rel)
		npop += ndcg(topK(sp, nil, 10), rel)
		ncnt++
	}
	fmt.Printf("cold items %d users %.0f NDCG@10 content %.4f pop(tie=id order) %.4f\n", len(cold), ncnt, nc/ncnt, npop/ncnt)

	// ---------- purchase propensity ----------
	// features from train period; examples: (user,item) viewed in test period
	type acc struct{ v, p float64 }
	itemConv := make([]acc, nI)
	userCat := make([]map[string]float64, nU)
	userBrand := make([]map[string]float64, nU)
	userTot := make([]float64, nU)
	userBuy := make([]float64, nU)
	userLP := make([]float64, nU)
	userLPn := make([]float64, nU)
	for u := range nU {
		userCat[u] = map[string]float64{}
		userBrand[u] = map[string]float64{}
	}
	type pair struct{ u, i int }
	exView := map[pair]int{}
	exBuy := map[pair]bool{}
	var exOrder []pair
	for _, in := range ds.Interactions {
		u, i := userIdx[in.UserID], itemIdx[in.ItemID]
		it := ds.Items[i]
		if in.Timestamp < cut {
			switch in.Event {
			case dataset.View:
				itemConv[i].v++
				userCat[u][it.Category]++
				userBrand[u][it.Brand]++
				userTot[u]++
				if !math.IsNaN(it.Price) {
					userLP[u] += math.Log(it.Price / w.cats[w.items[i].cat].spec.median)
					userLPn[u]++
				}
			case dataset.Purchase:
				itemConv[i].p++
				userBuy[u]++
			}
		} else {
			p := pair{u, i}
			if in.Event == dataset.View {
				if _, ok := exView[p]; !ok {
					exOrder = append(exOrder, p)
				}
				exView[p]++
			}
			if in.Event == dataset.Purchase {
				exBuy[p] = true
			}
		}
	}
	var X [][]float64
	var Y []float64
	for _, p := range exOrder {
		it := ds.Items[p.i]
		tot := userTot[p.u] + 1
		lp := 0.0
		if !math.IsNaN(it.Price) {
			lp = math.Log(it.Price / w.cats[w.items[p.i].cat].spec.median)
		}
		ulp := 0.0
		if userLPn[p.u] > 0 {
			ulp = userLP[p.u] / userLPn[p.u]
		}
		x := []float64{
			1,
			userCat[p.u][it.Category] / tot,
			userBrand[p.u][it.Brand] / tot,
			math.Abs(lp - ulp),
			(lp - ulp) * (lp - ulp),
			(itemConv[p.i].p + 0.5) / (itemConv[p.i].v + 10),
			(userBuy[p.u] + 0.5) / (userTot[p.u] + 10),
			math.Log1p(float64(exView[p])),
			math.Log1p(userTot[p.u]),
		}
		X = append(X, x)
		y := 0.0
		if exBuy[p] {
			y = 1
		}
		Y = append(Y, y)
	}
	// standardize
	nf := len(X[0])
	for f := 1; f < nf; f++ {
		m, s := 0.0, 0.0
		for _, x := range X {
			m += x[f]
		}
		m /= float64(len(X))
		for _, x := range X {
			s += (x[f] - m) * (x[f] - m)
		}
		s = math.Sqrt(s / float64(len(X)))
		for _, x := range X {
			x[f] = (x[f] - m) / (s + 1e-12)
		}
	}
	half := len(X) / 2
	wt := make([]float64, nf)
	for it := 0; it < 300; it++ {
		g := make([]float64, nf)
		for k := 0; k < half; k++ {
			z := 0.0
			for f := range nf {
				z += wt[f] * X[k][f]
			}
			e := sigmoid(z) - Y[k]
			for f := range nf {
				g[f] += e * X[k][f]
			}
		}
		for f := range nf {
			wt[f] -= 0.5 * g[f] / float64(half)
		}
	}
	auc := func(feat func(x []float64) float64) float64 {
		type sp struct{ s, y float64 }
		var v []sp
		for k := half; k < len(X); k++ {
			v = append(v, sp{feat(X[k]), Y[k]})
		}
		sort.Slice(v, func(a, b int) bool { return v[a].s < v[b].s })
		var rankSum, npos float64
		for r, x := range v {
			if x.y == 1 {
				rankSum += float64(r + 1)
				npos++
			}
		}
		nneg := float64(len(v)) - npos
		return (rankSum - npos*(npos+1)/2) / (npos * nneg)
	}
	pos := 0.0
	for _, y := range Y {
		pos += y
	}
	fmt.Printf("propensity: examples %d pos rate %.3f LR AUC %.4f weights %.2f\n", len(X), pos/float64(len(Y)), auc(func(x []float64) float64 {
		z := 0.0
		for f := range nf {
			z += wt[f] * x[f]
		}
		return z
	}), wt)
	for f := 1; f < nf; f++ {
		fmt.Printf(" feat %d AUC %.3f\n", f, auc(func(x []float64) float64 { return x[f] }))
	}
}

func envF(k string) float64 {
	var f float64
	fmt.Sscan(os.Getenv(k), &f)
	return f
}
