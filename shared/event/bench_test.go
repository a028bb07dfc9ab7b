package event

import "testing"

func BenchmarkDecodePush(b *testing.B) {
	for _, file := range []string{"push_binary.json", "push_structured.json"} {
		body := readFixture(b, file)
		b.Run(file, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, _, err := DecodePush(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	ev := baseEvent()
	b.Run("binary", func(b *testing.B) {
		for b.Loop() {
			Encode(ev)
		}
	})
	b.Run("structured", func(b *testing.B) {
		for b.Loop() {
			if _, err := EncodeStructured(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
