import Testing
@testable import NPID

@Suite struct CountedNounTests {
    @Test func oneTakesSingular() {
        #expect(counted(1, "image") == "1 image")
        #expect(counted(1, "class") == "1 class")
        #expect(counted(1, "unfinished temporary file") == "1 unfinished temporary file")
    }

    @Test func otherCountsTakePlural() {
        #expect(counted(0, "image") == "0 images")
        #expect(counted(2, "image") == "2 images")
        #expect(counted(-1, "image") == "-1 images")
        #expect(counted(3, "class") == "3 classes")
        #expect(counted(2, "match") == "2 matches")
        #expect(counted(2, "box") == "2 boxes")
        #expect(counted(2, "bad file") == "2 bad files")
    }

    @Test func irregularPluralIsUsed() {
        #expect(counted(2, "index", plural: "indices") == "2 indices")
        #expect(counted(1, "index", plural: "indices") == "1 index")
        // "ch" spoken as k takes a plain s, which the rule for "match" would get wrong.
        #expect(counted(2, "epoch", plural: "epochs") == "2 epochs")
    }
}
