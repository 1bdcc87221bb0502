package datagen

// categorySpec is the fixed description of one demo category: its slug, the
// vocabulary its titles and descriptions are drawn from, the log-normal price
// distribution of its items and how large and busy it is.
type categorySpec struct {
	slug  string
	words []string // attribute words: 2-4 of them go into each title
	nouns []string // product nouns: one ends each title
	// median and sigma of the log-normal price distribution.
	median, sigma float64
	// size is the relative share of the catalogue; traffic the relative
	// chance that a shopper picks the category as a favourite.
	size, traffic float64
	// complements are slugs of categories whose items are natural follow-ups
	// (phone → case); some successor links point there.
	complements []string
	// cjk marks a Chinese vocabulary: descriptions are written without spaces.
	cjk bool
}

// catalog lists the demo categories, in the order Config.Categories takes them.
var catalog = []categorySpec{
	{
		slug:   "smartphones",
		words:  []string{"unlocked", "dual", "sim", "5g", "amoled", "display", "octa", "core", "camera", "megapixel", "zoom", "battery", "charging", "storage", "128gb", "256gb", "flagship", "slim", "foldable", "android", "nfc", "refresh", "biometric", "night", "portrait", "titanium"},
		nouns:  []string{"smartphone", "phone", "handset", "mobile"},
		median: 420, sigma: 0.6, size: 5, traffic: 8,
		complements: []string{"phone-accessories", "audio"},
	},
	{
		slug:   "phone-accessories",
		words:  []string{"silicone", "magnetic", "shockproof", "tempered", "glass", "usbc", "braided", "wireless", "qi", "rugged", "clear", "leather", "wallet", "kickstand", "car", "vent", "dashboard", "20w", "transparent", "scratch", "matte", "grip", "lanyard", "fast", "cable", "protective"},
		nouns:  []string{"case", "charger", "cable", "protector", "powerbank", "mount", "stand"},
		median: 18, sigma: 0.6, size: 7, traffic: 7,
		complements: []string{"smartphones"},
	},
	{
		slug:   "laptops",
		words:  []string{"inch", "ssd", "ram", "intel", "ryzen", "processor", "backlit", "fhd", "ips", "touchscreen", "convertible", "gaming", "rtx", "graphics", "thunderbolt", "aluminium", "business", "fingerprint", "webcam", "cooling", "hdmi", "windows", "linux", "ddr5", "oled", "16gb"},
		nouns:  []string{"laptop", "notebook", "ultrabook", "chromebook"},
		median: 850, sigma: 0.5, size: 4, traffic: 5,
		complements: []string{"computer-accessories"},
	},
	{
		slug:   "computer-accessories",
		words:  []string{"ergonomic", "mechanical", "rgb", "switches", "bluetooth", "dpi", "usb", "docking", "ultrawide", "curved", "144hz", "4k", "adjustable", "silent", "programmable", "tenkeyless", "hotswap", "vertical", "palm", "rest", "receiver", "multidevice", "portable", "backlit", "optical", "keycaps"},
		nouns:  []string{"mouse", "keyboard", "monitor", "hub", "dock", "mousepad"},
		median: 45, sigma: 0.8, size: 6, traffic: 5,
		complements: []string{"laptops"},
	},
	{
		slug:   "audio",
		words:  []string{"noise", "cancelling", "bass", "stereo", "bluetooth", "overear", "inear", "hifi", "surround", "subwoofer", "microphone", "studio", "waterproof", "playtime", "codec", "lossless", "driver", "dynamic", "transparency", "ambient", "foldable", "sweatproof", "wireless", "spatial", "anc", "bookshelf"},
		nouns:  []string{"headphones", "earbuds", "speaker", "soundbar", "amplifier"},
		median: 80, sigma: 0.8, size: 5, traffic: 6,
		complements: []string{"smartphones"},
	},
	{
		slug:   "cameras",
		words:  []string{"mirrorless", "dslr", "sensor", "fullframe", "aperture", "autofocus", "stabilization", "telephoto", "wideangle", "prime", "video", "vlogging", "shutter", "viewfinder", "carbon", "fiber", "action", "underwater", "apsc", "bokeh", "lowlight", "raw", "gimbal", "mount", "flash", "filter"},
		nouns:  []string{"camera", "lens", "tripod", "drone", "gimbal"},
		median: 320, sigma: 0.9, size: 3, traffic: 3,
		complements: []string{"computer-accessories", "sports-outdoors"},
	},
	{
		slug:   "kitchen",
		words:  []string{"nonstick", "stainless", "steel", "cast", "iron", "ceramic", "induction", "dishwasher", "chef", "serrated", "electric", "cordless", "speed", "jar", "bpa", "copper", "handle", "lid", "granite", "oven", "forged", "whisk", "temperature", "skillet", "blade", "glass"},
		nouns:  []string{"pan", "knife", "blender", "kettle", "cookware", "mixer", "pot"},
		median: 40, sigma: 0.7, size: 6, traffic: 5,
		complements: []string{"grocery", "home-decor"},
	},
	{
		slug:   "home-decor",
		words:  []string{"rattan", "boho", "nordic", "minimalist", "vintage", "handmade", "woven", "scented", "soy", "wax", "velvet", "brass", "decorative", "farmhouse", "marble", "wall", "tabletop", "floor", "dimmable", "jute", "abstract", "botanical", "terracotta", "gilded", "ceramic", "linen"},
		nouns:  []string{"lamp", "vase", "mirror", "rug", "frame", "candle", "cushion"},
		median: 35, sigma: 0.8, size: 6, traffic: 4,
		complements: []string{"bedding", "kitchen"},
	},
	{
		slug:   "bedding",
		words:  []string{"cotton", "egyptian", "thread", "count", "queen", "king", "memory", "foam", "cooling", "hypoallergenic", "down", "microfiber", "weighted", "bamboo", "breathable", "fitted", "deep", "pocket", "quilted", "organic", "percale", "sateen", "flannel", "orthopedic", "linen", "reversible"},
		nouns:  []string{"duvet", "pillow", "sheets", "blanket", "mattress", "topper"},
		median: 55, sigma: 0.7, size: 4, traffic: 3,
		complements: []string{"home-decor"},
	},
	{
		slug:   "womens-fashion",
		words:  []string{"floral", "midi", "maxi", "wrap", "chiffon", "satin", "knit", "pleated", "ruffle", "sleeveless", "longsleeve", "vneck", "oversized", "cropped", "highwaist", "summer", "elegant", "evening", "boho", "lace", "cashmere", "petite", "belted", "puff", "tiered", "ribbed"},
		nouns:  []string{"dress", "blouse", "skirt", "cardigan", "jumpsuit", "coat"},
		median: 38, sigma: 0.6, size: 8, traffic: 7,
		complements: []string{"shoes", "beauty"},
	},
	{
		slug:   "mens-fashion",
		words:  []string{"slimfit", "regular", "denim", "stretch", "oxford", "buttondown", "flannel", "fleece", "zip", "cotton", "wool", "tailored", "crewneck", "pique", "distressed", "straight", "bomber", "windproof", "formal", "quilted", "chambray", "twill", "relaxed", "tapered", "merino", "corduroy"},
		nouns:  []string{"shirt", "jeans", "jacket", "hoodie", "chinos", "polo", "blazer"},
		median: 42, sigma: 0.6, size: 7, traffic: 6,
		complements: []string{"shoes"},
	},
	{
		slug:   "shoes",
		words:  []string{"running", "cushioned", "breathable", "mesh", "leather", "suede", "chelsea", "ankle", "waterproof", "laceup", "slipon", "nonslip", "platform", "arch", "support", "lightweight", "trail", "canvas", "block", "heel", "orthotic", "sole", "wide", "knit", "insole", "grip"},
		nouns:  []string{"sneakers", "boots", "sandals", "loafers", "heels", "slippers"},
		median: 60, sigma: 0.6, size: 6, traffic: 6,
		complements: []string{"sports-outdoors", "mens-fashion", "womens-fashion"},
	},
	{
		slug:   "beauty",
		words:  []string{"hyaluronic", "acid", "vitamin", "retinol", "niacinamide", "spf", "matte", "hydrating", "fragrance", "vegan", "crueltyfree", "antiaging", "sensitive", "skin", "longwear", "volumizing", "gentle", "foaming", "glow", "collagen", "peptide", "brightening", "ceramide", "dewy", "tinted", "nourishing"},
		nouns:  []string{"serum", "moisturizer", "cleanser", "lipstick", "mascara", "sunscreen", "toner"},
		median: 22, sigma: 0.7, size: 6, traffic: 6,
		complements: []string{"womens-fashion"},
	},
	{
		slug:   "sports-outdoors",
		words:  []string{"camping", "hiking", "ultralight", "insulated", "resistance", "fitness", "yoga", "nonslip", "trekking", "cycling", "gym", "workout", "foldable", "hydration", "season", "durable", "reflective", "ventilated", "thermal", "compression", "adjustable", "waterproof", "person", "liter", "carabiner", "stainless"},
		nouns:  []string{"tent", "backpack", "mat", "dumbbells", "bottle", "helmet"},
		median: 45, sigma: 0.9, size: 6, traffic: 5,
		complements: []string{"shoes"},
	},
	{
		slug:   "toys",
		words:  []string{"educational", "stem", "wooden", "kids", "toddler", "montessori", "building", "remote", "control", "rechargeable", "interactive", "musical", "jigsaw", "family", "strategy", "cooperative", "soft", "cuddly", "animal", "dinosaur", "magnetic", "coding", "creative", "ages", "pieces", "plush"},
		nouns:  []string{"puzzle", "blocks", "doll", "robot", "car", "game", "teddy"},
		median: 25, sigma: 0.7, size: 5, traffic: 4,
		complements: []string{"books"},
	},
	{
		slug:   "books",
		words:  []string{"bestseller", "edition", "fiction", "mystery", "thriller", "romance", "fantasy", "history", "science", "selfhelp", "memoir", "illustrated", "classic", "author", "award", "winning", "series", "children", "poetry", "essays", "business", "psychology", "travel", "recipes", "annotated", "novella"},
		nouns:  []string{"novel", "cookbook", "biography", "guide", "paperback", "hardcover"},
		median: 14, sigma: 0.5, size: 7, traffic: 5,
		complements: []string{"toys", "stationery"},
	},
	{
		slug:   "pet-supplies",
		words:  []string{"dog", "cat", "puppy", "kitten", "grainfree", "salmon", "chicken", "clumping", "odor", "control", "retractable", "reflective", "orthopedic", "washable", "chew", "dental", "interactive", "catnip", "small", "large", "breed", "senior", "natural", "harness", "tuna", "scratching"},
		nouns:  []string{"kibble", "litter", "leash", "collar", "bed", "scratcher"},
		median: 24, sigma: 0.7, size: 4, traffic: 3,
		complements: []string{"grocery"},
	},
	{
		slug:   "grocery",
		words:  []string{"organic", "arabica", "roast", "dark", "milk", "cocoa", "whole", "bean", "ground", "extra", "virgin", "glutenfree", "raw", "unfiltered", "protein", "nuts", "almond", "sea", "salt", "artisan", "italian", "imported", "sugarfree", "vegan", "wildflower", "oats"},
		nouns:  []string{"coffee", "chocolate", "snacks", "pasta", "oil", "honey", "granola"},
		median: 12, sigma: 0.6, size: 5, traffic: 4,
		complements: []string{"kitchen"},
	},
	{
		slug:   "tea",
		words:  []string{"龙井", "明前", "特级", "西湖", "铁观音", "大红袍", "金骏眉", "正山小种", "安吉", "碧螺春", "云南", "古树", "熟茶", "生茶", "陈年", "清香", "浓香", "手工", "礼盒", "罐装", "茶饼", "高山", "有机", "散装", "新茶", "头采"},
		nouns:  []string{"绿茶", "红茶", "乌龙茶", "普洱", "白茶", "茶具"},
		median: 45, sigma: 0.8, size: 3, traffic: 2,
		complements: []string{"kitchen", "stationery"},
		cjk:         true,
	},
	{
		slug:   "stationery",
		words:  []string{"狼毫", "羊毫", "兼毫", "书法", "国画", "初学者", "练习", "生宣", "熟宣", "手工", "徽墨", "端砚", "套装", "学生", "办公", "复古", "皮面", "加厚", "横线", "方格", "小楷", "楷书", "行书", "礼盒", "收藏", "文房"},
		nouns:  []string{"毛笔", "宣纸", "墨汁", "砚台", "钢笔", "笔记本"},
		median: 20, sigma: 0.8, size: 3, traffic: 2,
		complements: []string{"books", "tea"},
		cjk:         true,
	},
}

// genericWords pad English descriptions; they are shared by all categories.
var genericWords = []string{
	"new", "quality", "premium", "best", "value", "gift", "perfect", "everyday",
	"design", "modern", "popular", "great", "ideal", "home", "easy", "use",
	"comfortable", "stylish", "warranty", "original", "authentic", "sale",
	"bundle", "pack", "set", "colour", "black", "white", "grey", "blue", "red",
	"green", "size", "limited", "with", "for", "and", "the", "your", "to",
}

// genericCJK pad Chinese descriptions.
var genericCJK = []string{
	"正品", "包邮", "新款", "热卖", "精选", "送礼", "优惠", "限量", "经典",
	"品质", "保证", "官方", "旗舰店", "推荐", "好评", "实惠", "特价", "现货",
	"的", "和",
}

// Brand names are built from these syllables: prefix + middle + suffix.
var (
	brandPrefixes = []string{"Al", "Bel", "Cor", "Dar", "El", "Fen", "Gal", "Hal", "Ir", "Jun", "Kel", "Lum", "Mor", "Nor", "Or", "Pax", "Quin", "Ros", "Sol", "Tor", "Ul", "Vel", "Wyn", "Xan", "Yor", "Zen"}
	brandMiddles  = []string{"", "", "", "ri", "va", "lo", "de", "ma", "ne", "ti"}
	brandSuffixes = []string{"a", "ex", "ion", "ora", "ix", "en", "on", "ara", "is", "io", "ia", "ux", "wood", "line", "mark", "co", "tek", "ly", "ster", "vale", "field", "ane"}
)
