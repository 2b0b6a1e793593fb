package cybereasontest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

const (
	minuteMs = int64(time.Minute / time.Millisecond)
	hourMs   = int64(time.Hour / time.Millisecond)
	dayMs    = 24 * hourMs
)

// GenerateTenant returns a tenant of the given numbers of sensors and MalOps. The same seed,
// counts and now always produce the same tenant. Negative counts count as 0.
//
// Sensors carry every field the console sends, about 3 KB each, with a mix of statuses
// (Online, Offline, Stale, Archived), OS types (WINDOWS, LINUX, OSX), policies and groups.
// MalOps are EDR and EPP MalopInboxModel objects created in the 7 days before now, whose machines
// are generated sensors, and some carry a non-empty iconBase64. The console also serves each
// MalOp in the MalOp management (v2) form and its details (crimes/unified for EDR MalOps,
// detection/details for EPP MalOps). The tenant has as many malware alerts as MalOps, some of
// them repeating an earlier alert's guid with a later timestamp, and the policies of its sensors.
func GenerateTenant(seed int64, sensors, malops int, now time.Time) *Tenant {
	g := newGenerator(seed, now)
	t := newTenant(seed, g.organization)

	for i := range max(sensors, 0) {
		t.sensors = append(t.sensors, mustSensorRecord(g.sensor(i)))
	}
	for range max(malops, 0) {
		creation := g.now - g.between(10*minuteMs, 7*dayMs)
		lastUpdate := creation + g.between(0, g.now-creation)
		t.malops = append(t.malops, mustMalopRecord(g.malop(t.sensors, creation, lastUpdate)))
	}
	t.feeds = generateFeeds(seed, g, t.sensors, max(malops, 0))
	return t
}

// generator draws realistic console objects from a seeded random source.
type generator struct {
	random       *rand.Rand
	now          int64  // epoch milliseconds
	org          string // upper case, as in pylumIds
	organization string // lower case, as in the organization field
	domain       string
	servers      []detectionServer
	policies     []policy
	groups       []sensorGroup
	hostnames    map[string]bool
	guids        map[string]bool
}

type detectionServer struct {
	id, name, ip, privateIP, collective string
	guidSuffix                          int64 // second part of "<int>.<int>" machine guids
}

type sensorGroup struct{ id, name string }

type policy struct {
	id, name   string
	protection protection
}

// protection is the state of the protection features of a sensor.
type protection struct {
	antiMalware, amStatus, staticDetect, staticPrevent, ransomware, prevention, antiExploit,
	powerShell, documentStatus, documentMode, usb, firewall, remoteShell, bep, vpp, vfp string
}

var organizations = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell"}

func newGenerator(seed int64, now time.Time) *generator {
	g := &generator{
		random:    newRandom(seed, 0),
		now:       now.UnixMilli(),
		hostnames: make(map[string]bool),
		guids:     make(map[string]bool),
	}
	g.organization = organizations[g.random.IntN(len(organizations))]
	g.org = strings.ToUpper(g.organization)
	g.domain = "corp." + g.organization + ".example"

	for i := range 1 + g.random.IntN(2) {
		g.servers = append(g.servers, detectionServer{
			id:         g.hex(24),
			name:       fmt.Sprintf("%s-reg-%d", g.organization, i+1),
			ip:         fmt.Sprintf("10.0.%d.%d", i, 10+g.random.IntN(200)),
			privateIP:  fmt.Sprintf("10.0.%d.%d", i, 10+g.random.IntN(200)),
			collective: g.uuid(),
			guidSuffix: g.random.Int64(),
		})
	}
	g.groups = []sensorGroup{
		{"00000000-0000-0000-0000-000000000000", "Unassigned"},
		{g.uuid(), "Finance"},
		{g.uuid(), "Engineering"},
		{g.uuid(), "Datacenter"},
	}
	g.policies = []policy{
		{g.uuid(), "Default", detectOnly},
		{g.uuid(), "Workstations - Prevent", prevent},
		{g.uuid(), "Servers - Detect", detectOnly},
		{g.uuid(), "Linux Servers", linuxDefault},
	}
	return g
}

var (
	detectOnly = protection{
		antiMalware: "AM_ENABLED", amStatus: "AM_DETECT_ONLY", staticDetect: "MODERATE", staticPrevent: "DISABLED",
		ransomware: "DETECT_ONLY", prevention: "DISABLED", antiExploit: "AE_DISABLED", powerShell: "PS_DISABLED",
		documentStatus: "DS_DETECT", documentMode: "DM_MODERATE", usb: "DISABLED", firewall: "DISABLED",
		remoteShell: "AC_DISABLED", bep: "BEP_DETECT", vpp: "VPP_DETECT", vfp: "VFP_M_DETECT",
	}
	prevent = protection{
		antiMalware: "AM_ENABLED", amStatus: "AM_QUARANTINE", staticDetect: "AGGRESSIVE", staticPrevent: "MODERATE",
		ransomware: "DETECT_SUSPEND_PREVENT", prevention: "ENABLED", antiExploit: "AE_ENABLED", powerShell: "PS_ENABLED",
		documentStatus: "DS_PREVENT", documentMode: "DM_AGGRESSIVE", usb: "ENABLED", firewall: "ENABLED",
		remoteShell: "AC_ENABLED", bep: "BEP_PREVENT", vpp: "VPP_PREVENT", vfp: "VFP_M_PREVENT",
	}
	linuxDefault = protection{
		antiMalware: "AM_ENABLED", amStatus: "AM_DETECT_DISINFECT", staticDetect: "CAUTIOUS", staticPrevent: "DISABLED",
		ransomware: "DISABLED", prevention: "NOT_INSTALLED", antiExploit: "", powerShell: "",
		documentStatus: "", documentMode: "", usb: "DISABLED", firewall: "DISABLED",
		remoteShell: "AC_ENABLED", bep: "", vpp: "", vfp: "",
	}
)

// between returns a uniform value in [low, high].
func (g *generator) between(low, high int64) int64 {
	if high <= low {
		return low
	}
	return low + g.random.Int64N(high-low+1)
}

func (g *generator) chance(percent int) bool {
	return g.random.IntN(100) < percent
}

func pick[T any](g *generator, choices []T) T {
	return choices[g.random.IntN(len(choices))]
}

// weighted is a value with its relative weight.
type weighted[T any] struct {
	value  T
	weight int
}

func pickWeighted[T any](g *generator, choices []weighted[T]) T {
	total := 0
	for _, choice := range choices {
		total += choice.weight
	}
	n := g.random.IntN(total)
	for _, choice := range choices {
		if n < choice.weight {
			return choice.value
		}
		n -= choice.weight
	}
	return choices[len(choices)-1].value
}

func (g *generator) hex(digits int) string {
	const alphabet = "0123456789abcdef"
	var b strings.Builder
	for range digits {
		b.WriteByte(alphabet[g.random.IntN(len(alphabet))])
	}
	return b.String()
}

func (g *generator) letters(alphabet string, n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(alphabet[g.random.IntN(len(alphabet))])
	}
	return b.String()
}

// uuid returns a random (version 4) UUID.
func (g *generator) uuid() string {
	h := g.hex(32)
	variant := "89ab"[g.random.IntN(4)]
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-" + string(variant) + h[17:20] + "-" + h[20:32]
}

// crGUID returns a 16-character element guid, the form newer consoles use.
func (g *generator) crGUID() string {
	return "AAAA" + g.letters("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", 12)
}

func (g *generator) privateIPv4() string {
	switch g.random.IntN(3) {
	case 0:
		return fmt.Sprintf("10.%d.%d.%d", g.random.IntN(256), g.random.IntN(256), 1+g.random.IntN(254))
	case 1:
		return fmt.Sprintf("172.%d.%d.%d", 16+g.random.IntN(16), g.random.IntN(256), 1+g.random.IntN(254))
	default:
		return fmt.Sprintf("192.168.%d.%d", g.random.IntN(256), 1+g.random.IntN(254))
	}
}

// publicIPv4 returns an address of the documentation ranges (RFC 5737), never a real host.
func (g *generator) publicIPv4() string {
	prefix := pick(g, []string{"192.0.2", "198.51.100", "203.0.113"})
	return fmt.Sprintf("%s.%d", prefix, 1+g.random.IntN(254))
}

// mustSensorRecord encodes a generated sensor. It indexes the fields from doc directly, which is
// several times faster than decoding the JSON again as newSensorRecord does.
func mustSensorRecord(doc sensorDoc) *sensorRecord {
	raw, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("cybereasontest: encode generated sensor: %v", err))
	}
	return &sensorRecord{id: doc.SensorID, raw: raw, fields: doc.filterValues()}
}

func mustMalopRecord(doc malopDoc) *malopRecord {
	raw, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("cybereasontest: encode generated MalOp: %v", err))
	}
	record, err := newMalopRecord(raw)
	if err != nil {
		panic(fmt.Sprintf("cybereasontest: generated MalOp is invalid: %v", err))
	}
	return record
}
