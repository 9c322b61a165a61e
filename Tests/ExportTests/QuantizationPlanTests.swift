import Foundation
import ModelFormats
import Testing

@testable import Export

/// QuantizationPlan against the real llama.cpp: Fixtures/quant_plan.json holds, for each input
/// model (tensor list and hyper-parameters only) and each file type, the tensor types
/// llama-cpp-python 0.3.36's `llama_model_quantize` wrote (or that it failed), made by
/// Fixtures/make_quant_plan_fixture.py.
struct QuantizationPlanTests {
    struct Run: Sendable {
        let fileType: String
        /// The non-default llama_model_quantize_params, as "key=value" (sorted).
        let optionKeys: [String]
        let optionsText: String
        let options: QuantizationPlan.Options
        let types: [String]?
        let error: String?
    }

    /// A hyper-parameter as the fixture has it: a number, or one per layer.
    enum Value: Sendable {
        case number(Int)
        case perLayer([Int])

        var layer0: Int {
            switch self {
            case .number(let n): return n
            case .perLayer(let a): return a.first ?? 0
            }
        }
    }

    struct Model: Sendable {
        let name: String
        let architecture: String
        let hparams: [(key: String, value: Value)]
        let tensors: [(name: String, dimensions: [Int], type: GGMLType)]
        let outputOrder: [Int]?
        let runs: [Run]

        func hparam(_ key: String) -> Int? { hparams.first { $0.key == key }?.value.layer0 }
    }

    static let fixtureURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/quant_plan.json")

    static let fixture: (fileTypes: [(String, Int32)], models: [Model]) = {
        let data = try! Data(contentsOf: fixtureURL)
        let root = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
        let fileTypes = (root["file_types"] as! [[String: Any]]).map {
            ($0["name"] as! String, Int32($0["ftype"] as! Int))
        }
        let models = (root["models"] as! [[String: Any]]).map { m -> Model in
            let tensors = (m["tensors"] as! [[Any]]).map { t -> (name: String, dimensions: [Int], type: GGMLType) in
                (t[0] as! String, t[1] as! [Int], GGMLType(name: t[2] as! String)!)
            }
            let runs = (m["runs"] as! [[String: Any]]).map { r -> Run in
                let o = r["options"] as? [String: Any] ?? [:]
                let options = QuantizationPlan.Options(
                    outputType: (o["output_type"] as? String).map { GGMLType(name: $0)! },
                    tokenEmbeddingType: (o["token_embedding_type"] as? String).map { GGMLType(name: $0)! },
                    pure: o["pure"] as? Bool ?? false,
                    quantizeOutputTensor: o["quantize_output_tensor"] as? Bool ?? true,
                    allowRequantize: o["allow_requantize"] as? Bool ?? false)
                return Run(fileType: r["file_type"] as! String, optionKeys: o.keys.sorted(),
                           optionsText: o.keys.sorted().map { "\($0)=\(o[$0]!)" }.joined(separator: ","),
                           options: options,
                           types: (r["types"] as? String).map { $0.split(separator: " ").map(String.init) },
                           error: r["error"] as? String)
            }
            let hparams = (m["hparams"] as! [String: Any]).sorted { $0.key < $1.key }.compactMap { kv -> (key: String, value: Value)? in
                if let n = kv.value as? Int { return (kv.key, .number(n)) }
                if let a = kv.value as? [Int] { return (kv.key, .perLayer(a)) }
                return nil  // null: not in the file
            }
            return Model(name: m["name"] as! String, architecture: m["architecture"] as! String,
                         hparams: hparams, tensors: tensors, outputOrder: m["output_order"] as? [Int], runs: runs)
        }
        return (fileTypes, models)
    }()

    static func hyperparameters(_ m: Model) -> QuantizationPlan.Hyperparameters {
        let heads = m.hparam("attention.head_count") ?? 0
        return .init(architecture: m.architecture, blockCount: m.hparam("block_count")!, headCount: heads,
                     headCountKV: m.hparam("attention.head_count_kv") ?? heads,
                     expertCount: m.hparam("expert_count") ?? 0,
                     nextnPredictLayers: m.hparam("nextn_predict_layers") ?? 0)
    }

    static func describe(_ m: Model, _ run: Run) -> String {
        "\(m.name) \(run.fileType)" + (run.optionsText.isEmpty ? "" : " [\(run.optionsText)]")
    }

    /// Compares one run; returns the mismatches as lines.
    static func check(_ m: Model, _ run: Run, plan: () throws(ExportError) -> [(name: String, type: GGMLType)]) -> [String] {
        let what = describe(m, run)
        let result: [(name: String, type: GGMLType)]
        do throws(ExportError) {
            result = try plan()
        } catch {
            if run.error != nil { return [] }
            return ["\(what): Verity threw \"\(error.message)\"; llama.cpp wrote the file"]
        }
        if let error = run.error {
            return ["\(what): Verity planned the file; llama.cpp failed: \(error)"]
        }
        let want = run.types!
        guard result.count == want.count else {
            return ["\(what): \(result.count) tensors planned, llama.cpp wrote \(want.count)"]
        }
        var lines: [String] = []
        for (i, (t, expected)) in zip(m.tensors, want).enumerated() where result[i].name != t.name || result[i].type.name != expected {
            lines.append("\(what): \(t.name) \(t.dimensions) \(t.type.name): Verity \(result[i].type.name), llama.cpp \(expected)")
        }
        return lines
    }

    @Test func fixtureCoversEveryFileType() {
        let fixture = Self.fixture
        #expect(fixture.fileTypes.map(\.0) == GGUFFileType.all.map(\.name))
        #expect(fixture.fileTypes.map(\.1) == GGUFFileType.all.map(\.ftype))
        for model in fixture.models {
            let base = model.runs.filter { Set($0.optionKeys).isSubset(of: ["allow_requantize"]) }
            #expect(base.map(\.fileType) == GGUFFileType.all.map(\.name), "\(model.name)")
        }
    }

    @Test func matchesLlamaCppForEveryModelAndFileType() {
        var mismatches: [String] = []
        var matched = 0, total = 0
        for model in Self.fixture.models {
            let hparams = Self.hyperparameters(model)
            for run in model.runs {
                total += 1
                let fileType = GGUFFileType.named(run.fileType)!
                let options = run.options
                let lines = Self.check(model, run) { () throws(ExportError) in
                    try QuantizationPlan.plan(hparams, tensors: model.tensors, fileType: fileType, options: options)
                }
                if lines.isEmpty { matched += 1 }
                mismatches += lines
            }
        }
        print("QuantizationPlan vs llama.cpp: \(matched)/\(total) runs match over \(Self.fixture.models.count) models")
        for line in mismatches.prefix(200) { print("  MISMATCH \(line)") }
        #expect(mismatches.isEmpty, "\(mismatches.count) tensor types differ from llama.cpp's; first: \(mismatches.first ?? "")")
        #expect(total > 400)
    }

    /// The same through a GGUFFile (the metadata path), for the models small enough to back with memory.
    @Test func planFromGGUFFileMatches() throws {
        var mismatches: [String] = []
        for model in Self.fixture.models {
            let sizes = try model.tensors.map { t in
                try GGUFTensorInfo(name: t.name, dimensions: t.dimensions, type: t.type, offset: 0).byteCount
            }
            let arch = model.architecture
            var metadata: [(String, GGUFValue)] = [("general.architecture", .string(arch))]
            for (key, value) in model.hparams {
                switch value {
                case .number(let n): metadata.append(("\(arch).\(key)", .uint32(UInt32(n))))
                case .perLayer(let a): metadata.append(("\(arch).\(key)", .array(.uint32(a.map { UInt32($0) }))))
                }
            }
            // One untouched buffer backs every tensor: the plan reads no tensor data.
            let owner = MappedFile(allocating: sizes.max() ?? 1) { _ in }
            let file = try GGUFFile(metadata: metadata, tensors: model.tensors.map { ($0.name, $0.dimensions, $0.type, owner, 0) })
            #expect(try QuantizationPlan.Hyperparameters(file) == Self.hyperparameters(model), "\(model.name)")
            for run in model.runs {
                let fileType = GGUFFileType.named(run.fileType)!
                let options = run.options
                mismatches += Self.check(model, run) { () throws(ExportError) in
                    try QuantizationPlan.plan(file, fileType: fileType, options: options)
                }
            }
        }
        for line in mismatches.prefix(50) { print("  MISMATCH \(line)") }
        #expect(mismatches.isEmpty, "\(mismatches.count) differences; first: \(mismatches.first ?? "")")
    }

    @Test func tensorOrderIsLlamaCpps() {
        for model in Self.fixture.models {
            guard let order = model.outputOrder else { continue }
            #expect(QuantizationPlan.llamaCppTensorOrder(model.tensors.map(\.name)) == order, "\(model.name)")
        }
        let names = ["output.weight", "blk.10.a.weight", "blk.9.b.weight", "blk.9.a.weight", "abc", "blk.x.weight"]
        #expect(QuantizationPlan.llamaCppTensorOrder(names).map { names[$0] }
            == ["abc", "blk.x.weight", "output.weight", "blk.9.a.weight", "blk.9.b.weight", "blk.10.a.weight"])
    }

    @Test func fileTypeNames() throws {
        #expect(GGUFFileType.all.count == 19)
        for fileType in GGUFFileType.all {
            #expect(GGUFFileType.named(fileType.name) == fileType)
            #expect(GGUFFileType.named(fileType.name.lowercased()) == fileType)
            #expect(GGUFFileType.withFtype(fileType.ftype) == fileType)
            #expect(fileType.encodingLabel == fileType.name)
        }
        #expect(GGUFFileType.named("q4_k_m")?.ftype == 15)
        #expect(GGUFFileType.named("Q4_K_M")?.defaultType == .q4_K)
        #expect(GGUFFileType.named("Q4_K_M")?.llamaName == "Q4_K - Medium")
        #expect(GGUFFileType.named("F32")?.llamaName == "all F32")
        // llama-quantize's own aliases
        #expect(GGUFFileType.named("Q4_K") == .q4_K_M)
        #expect(GGUFFileType.named("q3_k") == .q3_K_M)
        #expect(GGUFFileType.named("Q5_K") == .q5_K_M)
        // and its numbers
        #expect(GGUFFileType.named("15") == .q4_K_M)
        #expect(GGUFFileType.named("0") == .f32)
        #expect(GGUFFileType.named("32") == .bf16)
        // nothing else
        for bad in ["Q4_K_X", "Q4", "FP16", "", "q4_k_m ", "Q8_K", "99", "4"] {
            #expect(GGUFFileType.named(bad) == nil, "\(bad)")
        }
        for (name, words) in [("IQ2_XXS", "importance matrix"), ("iq1_s", "importance matrix"), ("Q2_K_S", "importance matrix"),
                              ("IQ3_XS", "importance matrix"), ("IQ3_XXS", "importance matrix"), ("IQ3_S", "not supported"),
                              ("TQ1_0", "not supported"), ("MXFP4_MOE", "not supported"), ("COPY", "not a file type"),
                              ("Q4_K_X", "unknown")] {
            #expect(GGUFFileType.named(name) == nil)
            do throws(ExportError) {
                _ = try GGUFFileType.parse(name)
                Issue.record("\(name) was accepted")
            } catch {
                #expect(error.code == .invalidOption)
                #expect(error.message.contains(words), "\(name): \(error.message)")
            }
        }
    }

    @Test func rejectsOverrideTypesItCannotWrite() {
        let hp = QuantizationPlan.Hyperparameters(architecture: "llama", blockCount: 1, headCount: 4)
        let tensors: [(name: String, dimensions: [Int], type: GGMLType)] = [("token_embd.weight", [256, 16], .f16)]
        for type in [GGMLType.q8_K, .q8_1, .iq2_xxs, .i32] {
            #expect(throws: ExportError.self) {
                try QuantizationPlan.plan(hp, tensors: tensors, fileType: .q4_K_M, options: .init(outputType: type))
            }
        }
        let plan = try? QuantizationPlan.plan(hp, tensors: tensors, fileType: .q4_K_M, options: .init(tokenEmbeddingType: .q5_K))
        #expect(plan?.map(\.type) == [.q5_K])
    }

    @Test func llamaCppQuirks() throws {
        // use_more_bits over 32 layers: the first and last quarter-eighths, and every third between
        let more = (0..<32).filter { QuantizationPlan.State.useMoreBits($0, 32) }
        #expect(more == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31])
        // ggml_n_dims ignores trailing 1s; the 5-byte-name quirk of the "ends with weight" test
        #expect(QuantizationPlan.Item(name: "a.weight", dimensions: [256, 1], type: .f16).nDims == 1)
        #expect(QuantizationPlan.Item(name: "a.weight", dimensions: [256, 1, 2], type: .f16).nDims == 3)
        #expect(QuantizationPlan.Item(name: "abcde", dimensions: [256, 2], type: .f16).endsWithWeight)
        #expect(!QuantizationPlan.Item(name: "abcd", dimensions: [256, 2], type: .f16).endsWithWeight)
        #expect(QuantizationPlan.scanLayer("blk.12.attn_q.weight") == 12)
        #expect(QuantizationPlan.scanLayer("blk.x") == nil)
        #expect(QuantizationPlan.scanLayer("token_embd.weight") == nil)
    }
}
