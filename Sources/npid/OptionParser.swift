import NPID

/// One command-line option: its spellings, the name of its value (nil for a switch)
/// and its help line.
struct OptionSpec {
    let names: [String]
    let valueName: String?
    let help: String

    init(_ names: String..., value: String? = nil, help: String) {
        self.names = names
        self.valueName = value
        self.help = help
    }

    /// The long `--name` spelling, under which parsed values are stored whatever order the
    /// spellings were declared in.
    var primaryName: String { names.first { $0.hasPrefix("--") } ?? names[0] }

    /// The advice for an empty value of a path option. It is nil for other options, because
    /// their own checks reject an empty number or name.
    var emptyValueAdvice: String? {
        switch valueName {
        case "FILE.png": return "pass a file name ending in .png"
        case "FILE": return "pass a file path"
        case "DIR", "RUN_DIR", "ROOT": return "pass a folder path"
        default: return nil
        }
    }
}

/// The options and positional arguments given to one subcommand.
struct ParsedOptions {
    let command: String
    private(set) var values: [String: String] = [:]
    private(set) var switches: Set<String> = []
    private(set) var positional: [String] = []

    /// Parses `arguments` against `specs`, accepting `--name value`, `--name=value` and
    /// short aliases such as `-b 128`.
    init(_ arguments: [String], specs: [OptionSpec], command: String, allowsPositional: Bool = false) throws {
        self.command = command
        var byName: [String: OptionSpec] = [:]
        for spec in specs {
            for name in spec.names {
                byName[name] = spec
            }
        }

        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("-"), argument != "-" else {
                guard allowsPositional else {
                    throw UsageError("unexpected argument '\(argument)' for npid \(command); run npid \(command) --help to list the options")
                }
                // Every command's positional arguments are paths, and an empty one usually comes from an unset shell variable.
                guard !argument.isEmpty else {
                    throw UsageError("empty argument '' for npid \(command); pass a path or remove the argument")
                }
                positional.append(argument)
                continue
            }
            var name = argument
            var inlineValue: String?
            if let equals = argument.firstIndex(of: "="), argument.hasPrefix("--") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            guard let spec = byName[name] else {
                throw UsageError("unknown option \(name) for npid \(command); run npid \(command) --help to list the options")
            }
            if spec.valueName == nil {
                guard inlineValue == nil else {
                    throw UsageError("option \(name) takes no value, got '\(inlineValue!)'")
                }
                switches.insert(spec.primaryName)
                continue
            }
            let value: String
            if let inlineValue {
                value = inlineValue
            } else {
                guard index < arguments.count else {
                    throw UsageError("option \(name) needs a value (\(spec.valueName!))")
                }
                value = arguments[index]
                index += 1
            }
            if value.isEmpty, let advice = spec.emptyValueAdvice {
                throw UsageError("\(name) is empty; \(advice)")
            }
            values[spec.primaryName] = value
        }
    }

    func has(_ name: String) -> Bool {
        values[name] != nil || switches.contains(name)
    }

    func string(_ name: String) -> String? {
        values[name]
    }

    func requiredString(_ name: String) throws -> String {
        guard let value = values[name], !value.isEmpty else {
            throw UsageError("npid \(command) needs \(name); run npid \(command) --help for an example")
        }
        return value
    }

    func int(_ name: String) throws -> Int? {
        guard let text = values[name] else { return nil }
        guard let value = Int(text) else {
            throw UsageError("\(name) expects a whole number, got '\(text)'")
        }
        return value
    }

    func double(_ name: String) throws -> Double? {
        guard let text = values[name] else { return nil }
        guard let value = Double(text), value.isFinite else {
            throw UsageError("\(name) expects a number, got '\(text)'")
        }
        return value
    }
}

/// Formats the help text of a subcommand: usage line, summary and one line per option.
func helpText(usage: String, summary: String, specs: [OptionSpec]) -> String {
    var lines = ["usage: \(usage)", "", summary, "", "options:"]
    let labels = specs.map { spec in
        spec.names.joined(separator: ", ") + (spec.valueName.map { " \($0)" } ?? "")
    }
    let width = min((labels.map(\.count).max() ?? 0) + 2, 34)
    for (label, spec) in zip(labels, specs) {
        let padding = String(repeating: " ", count: max(width - label.count, 2))
        lines.append("  \(label)\(padding)\(spec.help)")
    }
    lines.append("  -h, --help" + String(repeating: " ", count: max(width - 10, 2)) + "show this help")
    return lines.joined(separator: "\n")
}
